<?php
// The path variables php-fpm derives from the FastCGI params: SCRIPT_NAME,
// SCRIPT_FILENAME, PATH_INFO, PATH_TRANSLATED, PHP_SELF and the ORIG_ copies
// it keeps when it rewrites one; then the script that really ran, the working
// directory (php-fpm chdir()s to the script's) and the query as PHP parsed it.
// The subdirectories serve it through one-line wrappers under other nginx
// locations (fcgi-tests/diff/locations.conf).
require __DIR__ . '/show.inc';

show_server([
    'SCRIPT_NAME', 'SCRIPT_FILENAME', 'PATH_INFO', 'PATH_TRANSLATED', 'PHP_SELF',
    'DOCUMENT_ROOT', 'DOCUMENT_URI', 'REQUEST_URI', 'QUERY_STRING',
    'ORIG_SCRIPT_NAME', 'ORIG_SCRIPT_FILENAME', 'ORIG_PATH_INFO', 'ORIG_PATH_TRANSLATED',
]);
show('main script', get_included_files()[0]);
show('cwd', getcwd());
show('$_GET', $_GET);
show('argv', $_SERVER['argv'] ?? '(unset)');
show('argc', $_SERVER['argc'] ?? '(unset)');
