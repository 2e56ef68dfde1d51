<?php
// A fatal error: an undefined function. With display_errors=0 and log_errors=1
// (as in php.ini-production, and as the tests run tfpm) expect status 500 and
// "PHP message:" on FCGI_STDERR. With PHP's built-in defaults the error is
// displayed in the page instead and the status stays 200, as under php-fpm.
echo tfpm_this_function_does_not_exist();
