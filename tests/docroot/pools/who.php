<?php
// Which process and user answered, and the ini values its pool set.
header('Content-Type: application/json');
echo json_encode([
    'pid' => getmypid(),
    'user' => trim((string) shell_exec('id -un')),
    'precision' => ini_get('precision'),
    'memory_limit' => ini_get('memory_limit'),
    'display_errors' => ini_get('display_errors'),
    'opcache' => function_exists('opcache_get_status') && is_array(@opcache_get_status(false)),
]), "\n";
