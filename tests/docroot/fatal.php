<?php
// A fatal error: an undefined function. Expect status 500 and "PHP message:" on FCGI_STDERR.
echo tfpm_this_function_does_not_exist();
