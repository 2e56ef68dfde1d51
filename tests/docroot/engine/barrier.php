<?php
// Waits until ?n= requests are inside this script at once (each leaves a file
// in ?dir=), so a pool that lost a thread shows up as "timeout".
$dir = $_GET['dir'];
$n = (int) $_GET['n'];
touch($dir . '/' . uniqid('', true));
$deadline = microtime(true) + 20;
while (count(glob("$dir/*")) < $n && microtime(true) < $deadline) {
    usleep(5000);
}
echo count(glob("$dir/*")) >= $n ? 'all here' : 'timeout';
