<?php
// Length and md5 of $_SERVER[?key=] (null if unset): checks large or unusual params arrive intact.
header('Content-Type: application/json');
$value = $_SERVER[$_GET['key'] ?? ''] ?? null;
echo json_encode(is_string($value) ? ['len' => strlen($value), 'md5' => md5($value)] : null);
