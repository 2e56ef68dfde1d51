<?php
// fastcgi_finish_request(): the client gets "before" and the response ends.
// The script then waits (up to 10 s) for the file ?go= to exist, echoes "after"
// (which must go nowhere) and writes ?marker= with "go" or "timeout".
$go = $_GET['go'] ?? '';
$marker = $_GET['marker'] ?? '';
echo "before";
fastcgi_finish_request();
$deadline = microtime(true) + 10;
while ($go !== '' && !file_exists($go) && microtime(true) < $deadline) {
    usleep(10000);
}
echo "after";
if ($marker !== '') {
    file_put_contents($marker, ($go === '' || file_exists($go)) ? 'go' : 'timeout');
}
