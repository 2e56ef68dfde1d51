<?php
// Waits (at most 10 s) until the file ?file= exists, then says which worker
// process answered: holds a request in flight for as long as a test needs.
$file = (string)($_GET['file'] ?? '');
for ($i = 0; $i < 1000 && !file_exists($file); $i++) {
    usleep(10000);
    clearstatcache();
}
echo getmypid(), "\n";
