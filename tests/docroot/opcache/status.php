<?php
// Prints whether opcache is on, how many hits it has, and whether ?file= is cached.
$status = opcache_get_status(false);
$file = __DIR__ . '/' . basename($_GET['file'] ?? 'status.php');
echo json_encode([
    'enabled' => $status !== false && $status['opcache_enabled'],
    'hits' => $status === false ? 0 : $status['opcache_statistics']['hits'],
    'cached' => opcache_is_script_cached($file),
]);
