<?php
// Reads the raw body from php://input in 64 KiB pieces; prints its size and md5.
header('Content-Type: application/json');
$in = fopen('php://input', 'rb');
$md5 = hash_init('md5');
$bytes = 0;
while (!feof($in)) {
    $piece = fread($in, 65536);
    if ($piece === false || $piece === '') {
        break;
    }
    $bytes += strlen($piece);
    hash_update($md5, $piece);
}
echo json_encode(['bytes' => $bytes, 'md5' => hash_final($md5)]);
