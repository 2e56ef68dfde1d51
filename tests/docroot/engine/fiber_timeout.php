<?php
// max_execution_time fires while a Fiber runs (?where=fiber) or while one is
// suspended (?where=main). Output is written from inside the fiber while the
// timer is armed, as in the crash FrankenPHP fixed.
set_time_limit(1);
$where = $_GET['where'] ?? 'fiber';
$fiber = new Fiber(function () use ($where) {
    echo "in fiber\n";
    flush();
    if ($where === 'fiber') {
        while (true) {
            echo '';
        }
    }
    Fiber::suspend();
});
$fiber->start();
while (true) {
}
