<?php
// A signal the script sends its own process, with ?mode=async (handled at
// once), dispatch (handled at pcntl_signal_dispatch()), fatal (a fatal
// error in the handler) or none (only shows the handler the request starts
// with, and that fibers can switch).
$mode = $_GET['mode'] ?? 'none';
if ($mode === 'fatal') {
    pcntl_async_signals(true);
    pcntl_signal(SIGUSR1, function () {
        ini_set('memory_limit', '4M');
        $too_much = str_repeat('x', 16 << 20);
    });
    posix_kill(posix_getpid(), SIGUSR1);
    echo "not reached\n";
}
echo "handler before: ", var_export(pcntl_signal_get_handler(SIGUSR1), true), "\n";
if ($mode === 'none') {
    $fiber = new Fiber(fn () => Fiber::suspend('fibers switch'));
    echo $fiber->start(), "\n";
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
