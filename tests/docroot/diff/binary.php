<?php
// PHP_BINARY: the executable serving the request (php-fpm's or tfpm's).
require __DIR__ . '/show.inc';
show('PHP_BINARY basename', basename(PHP_BINARY));
show('PHP_BINARY is a file', is_file(PHP_BINARY));
