<?php
// What the engine and the request look like from inside, as JSON.
header('Content-Type: application/json');
$opcache = function_exists('opcache_get_status') ? @opcache_get_status(false) : false;
echo json_encode([
    'sapi' => PHP_SAPI,
    'zts' => (bool) PHP_ZTS, // an int up to 8.2, a bool from 8.3
    'version' => PHP_VERSION,
    'opcache_loaded' => extension_loaded('Zend OPcache'),
    'opcache_enabled' => is_array($opcache) && !empty($opcache['opcache_enabled']),
    'finish_request' => function_exists('fastcgi_finish_request'),
    'script_filename' => $_SERVER['SCRIPT_FILENAME'] ?? null,
    'script_name' => $_SERVER['SCRIPT_NAME'] ?? null,
    'path_info' => $_SERVER['PATH_INFO'] ?? null,
    'php_self' => $_SERVER['PHP_SELF'] ?? null,
    'request_uri' => $_SERVER['REQUEST_URI'] ?? null,
    'request_method' => $_SERVER['REQUEST_METHOD'] ?? null,
    'document_root' => $_SERVER['DOCUMENT_ROOT'] ?? null,
    'gateway_interface' => $_SERVER['GATEWAY_INTERFACE'] ?? null,
    'https' => $_SERVER['HTTPS'] ?? null,
    'display_errors' => ini_get('display_errors'),
    // ini entries php-fpm registers (false when unknown).
    'fastcgi_logging' => ini_get('fastcgi.logging'),
    'cgi_fix_pathinfo' => ini_get('cgi.fix_pathinfo'),
], JSON_UNESCAPED_SLASHES);
