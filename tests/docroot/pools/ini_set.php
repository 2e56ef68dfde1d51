<?php
// ini_set on a php_admin_value (refused) and on a php_value (allowed).
$admin = ini_set('memory_limit', '64M');
$value = ini_set('precision', '3');
echo json_encode([
    'memory_limit' => ini_get('memory_limit'),
    'admin_set' => $admin,
    'precision' => ini_get('precision'),
    'value_set' => $value,
]), "\n";
