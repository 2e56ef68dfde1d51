<?php
// Streams a line every 20 ms, flushed, for at most ?s= seconds (default 20).
// The client is expected to go away: with ignore_user_abort the script keeps
// running, notices connection_aborted(), and writes "aborted" to ?marker=
// (or "not aborted" if the time runs out).
ignore_user_abort(true);
$marker = $_GET['marker'];
$deadline = microtime(true) + (float) ($_GET['s'] ?? 20);
$lines = 0;
while (!connection_aborted() && microtime(true) < $deadline) {
    echo "line $lines\n";
    flush();
    $lines++;
    usleep(20000);
}
file_put_contents($marker, connection_aborted() ? "aborted" : "not aborted");
