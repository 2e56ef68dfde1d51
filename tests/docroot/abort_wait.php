<?php
// Sleeps (?s= seconds, default 30) without output, and notes in ?marker= what
// it saw: an abort must wake it. With ?ignore=1 it runs on past the abort.
ignore_user_abort(($_GET['ignore'] ?? '0') === '1');
$marker = $_GET['marker'];
register_shutdown_function(function () use ($marker) {
    file_put_contents($marker, 'shutdown aborted=' . connection_aborted() . "\n", FILE_APPEND);
});
file_put_contents($marker, "started\n");
$left = sleep((int) ($_GET['s'] ?? 30));
file_put_contents($marker, 'woke early=' . (int) ($left > 0) . ' aborted=' . connection_aborted() . "\n", FILE_APPEND);
