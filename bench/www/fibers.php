<?php
// Fiber-heavy: 100 fibers, each suspending 10 times, scheduled round robin.
$fibers = [];
for ($i = 0; $i < 100; $i++) {
    $fibers[] = new Fiber(function () use ($i) {
        $sum = 0;
        for ($k = 0; $k < 10; $k++) {
            $sum += Fiber::suspend($i * $k);
        }
        return $sum;
    });
}
foreach ($fibers as $f) {
    $f->start();
}
$done = 0;
while ($done < count($fibers)) {
    $done = 0;
    foreach ($fibers as $f) {
        if ($f->isTerminated()) {
            $done++;
        } else {
            $f->resume(1);
        }
    }
}
echo "ok\n";
