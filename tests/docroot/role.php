<?php
// Prints the FastCGI role the request came in with ($_SERVER['FCGI_ROLE']).
echo $_SERVER['FCGI_ROLE'] ?? 'none', "\n";
