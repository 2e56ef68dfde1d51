<?php
// What the web server asked for, as JSON: the FastCGI role, method, URI,
// script, path info, query, the form fields and the raw body's size and md5.
// For the interop tests, which check that each real client's params reach
// PHP as expected.
header('Content-Type: application/json');
$body = file_get_contents('php://input');
echo json_encode([
    'role' => $_SERVER['FCGI_ROLE'] ?? null,
    'method' => $_SERVER['REQUEST_METHOD'] ?? null,
    'uri' => $_SERVER['REQUEST_URI'] ?? null,
    'script' => $_SERVER['SCRIPT_NAME'] ?? null,
    'path_info' => $_SERVER['PATH_INFO'] ?? null,
    'get' => $_GET,
    'post' => $_POST,
    'body_len' => strlen($body),
    'body_md5' => md5($body),
], JSON_UNESCAPED_SLASHES);
