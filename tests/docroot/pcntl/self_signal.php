<?php
// A signal the script sends its own process, with ?mode=async (handled at
// once), dispatch (handled at pcntl_signal_dispatch()) or none (only shows
// the handler the request starts with).
$mode = $_GET['mode'] ?? 'none';
echo "handler before: ", var_export(pcntl_signal_get_handler(SIGUSR1), true), "\n";
if ($mode === 'none') {
    exit;
}
pcntl_async_signals($mode === 'async');
pcntl_signal(SIGUSR1, function (int $signo, array $info) {
    echo "handled $signo from ", $info['pid'] === posix_getpid() ? 'itself' : 'elsewhere', "\n";
});
pcntl_signal(SIGUSR2, SIG_IGN);
posix_kill(posix_getpid(), SIGUSR2);
posix_kill(posix_getpid(), SIGUSR1);
echo "sent\n";
if ($mode === 'dispatch') {
    pcntl_signal_dispatch();
}
echo "done\n";
