<?php
// Waits for a child that outlives the request's time limit: the limit
// ends the wait and the request. The child goes when its parent does.
set_time_limit(1);
$parent = getmypid();
$pid = pcntl_fork();
if ($pid === 0) {
    echo "the child is up\n";
    while (posix_getppid() === $parent) {
        usleep(100000);
    }
    exit(0);
}
pcntl_waitpid($pid, $status);
echo "not reached\n";
