<?php
// Prints (and removes) the marker files finish.php?id= writes after
// fastcgi_finish_request(), waiting up to 5 s for the marker, which finish.php
// writes after the shutdown marker.
$marker = ini_get('upload_tmp_dir') . '/finish-' . basename($_GET['id'] ?? 'none');
$deadline = microtime(true) + 5;
while (!is_file($marker) && microtime(true) < $deadline) {
    usleep(10000);
}
foreach ([$marker, $marker . '-shutdown'] as $file) {
    echo basename($file) === basename($marker) ? 'marker' : 'shutdown marker', ":\n";
    echo is_file($file) ? file_get_contents($file) : "(none)\n";
    @unlink($file);
}
