<?php
// Reads a raw request body and reports its size and checksum.
$in = fopen('php://input', 'rb');
$ctx = hash_init('crc32b');
$n = 0;
while (!feof($in)) {
    $chunk = fread($in, 65536);
    $n += strlen($chunk);
    hash_update($ctx, $chunk);
}
echo $n, ' ', hash_final($ctx), "\n";
