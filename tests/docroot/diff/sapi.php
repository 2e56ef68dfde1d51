<?php
// What identifies the SAPI to an application: its name, the functions and
// ini entries of the cgi-fcgi module, the CLI-only constants, the extensions.
require __DIR__ . '/show.inc';
show('php_sapi_name()', php_sapi_name());
show('PHP_SAPI', PHP_SAPI);
$functions = [
    'fastcgi_finish_request', 'apache_request_headers', 'getallheaders', 'fpm_get_status',
    'apache_response_headers', 'apache_note', 'virtual', 'apache_get_modules',
];
foreach ($functions as $function) {
    show("function_exists($function)", function_exists($function));
}
show('cgi-fcgi loaded', extension_loaded('cgi-fcgi'));
show('cgi-fcgi functions', get_extension_funcs('cgi-fcgi'));
show('cgi-fcgi ini', ini_get_all('cgi-fcgi', false));
show('STDIN/STDOUT/STDERR defined', [defined('STDIN'), defined('STDOUT'), defined('STDERR')]);
show('php_ini_loaded_file()', php_ini_loaded_file());
show('php_ini_scanned_files()', php_ini_scanned_files());
show('ZEND_THREAD_SAFE', ZEND_THREAD_SAFE);
show('PHP_VERSION', PHP_VERSION);
show('sys_get_temp_dir()', sys_get_temp_dir());
show('connection_status()', connection_status());
show('ignore_user_abort()', ignore_user_abort());
