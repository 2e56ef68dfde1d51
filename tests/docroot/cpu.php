<?php
// Burns about 50 ms of CPU time (for the status page's "last request cpu").
$x = '';
$t = microtime(true);
while (microtime(true) - $t < 0.05) {
    $x = md5($x);
}
echo "burnt\n";
