<?php
// Streams ?mb= MiB as 64 KiB chunks, flushing each: chunk k is sprintf('%08x', k) repeated.
// No Content-Length, so the web server has to stream (or chunk) it.
$mb = max(0, (int)($_GET['mb'] ?? 1));
header('Content-Type: application/octet-stream');
for ($k = 0; $k < $mb * 16; $k++) {
    echo str_repeat(sprintf('%08x', $k), 8192);
    flush();
}
