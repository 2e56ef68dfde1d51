<?php
// The front controller of the interop docroot: Caddy's php_fastcgi sends
// every path that is not a file here.
require __DIR__ . '/echo.php';
