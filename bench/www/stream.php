<?php
// Streams ?mb= MiB (default 1024) in 64 KiB chunks, flushing each.
$chunk = str_repeat('s', 65536);
$n = (int) ($_GET['mb'] ?? 1024) * 16;
for ($i = 0; $i < $n; $i++) {
    echo $chunk;
    flush();
}
