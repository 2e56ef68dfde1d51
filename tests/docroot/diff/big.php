<?php
// ?n= bytes of a fixed pattern (lines numbered), in ?piece= sized echoes.
$n = (int) ($_GET['n'] ?? 0);
$piece = max(1, (int) ($_GET['piece'] ?? 8192));
$out = '';
for ($i = 0; strlen($out) < $n; $i++) {
    $out .= sprintf("%08d abcdefghijklmnopqrstuvwxyz\n", $i);
}
$out = substr($out, 0, $n);
foreach (str_split($out, $piece) as $chunk) {
    echo $chunk;
}
