<?php
// Worker mode: each request forks a child that prints a line and exits 3;
// the handler waits for it. The same script serves every request.
$n = 0;
$handler = function () use (&$n) {
    $n++;
    $pid = pcntl_fork();
    if ($pid === 0) {
        echo "the child of request $n\n";
        exit(3);
    }
    pcntl_waitpid($pid, $status);
    echo "request $n: its child exited with ", pcntl_wexitstatus($status), "\n";
};
while (frankenphp_handle_request($handler)) {
}
