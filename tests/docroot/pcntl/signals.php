<?php
// The child is a process of its own: pcntl_signal() works in it, and
// SIGTERM ends it with the default action.
$dir = $_GET['dir'];
$pid = pcntl_fork();
if ($pid === 0) {
    if ($_GET['sig'] === 'usr1') {
        pcntl_signal(SIGUSR1, function () use ($dir) {
            file_put_contents("$dir/usr1", 'handled');
            exit(3);
        });
    }
    touch("$dir/ready");
    while (true) {
        sleep(1);
        pcntl_signal_dispatch();
    }
}
while (!file_exists("$dir/ready")) {
    usleep(1000);
}
posix_kill($pid, $_GET['sig'] === 'usr1' ? SIGUSR1 : SIGTERM);
pcntl_waitpid($pid, $status);
if (pcntl_wifsignaled($status)) {
    echo "killed by signal ", pcntl_wtermsig($status), "\n";
} else {
    echo "exited with ", pcntl_wexitstatus($status), ", ", @file_get_contents("$dir/usr1"), "\n";
}
