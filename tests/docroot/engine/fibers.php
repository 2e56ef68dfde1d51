<?php
// Many fibers in one request (?n=, default 10,000), up to 1,000 alive at a
// time; each suspends once and returns twice what it was resumed with.
ini_set('memory_limit', '512M');
$n = (int) ($_GET['n'] ?? 10000);
$sum = 0;
$alive = [];
for ($i = 0; $i < $n; $i++) {
    $fiber = new Fiber(function (int $i): int {
        $x = Fiber::suspend($i);
        return $x * 2;
    });
    $sum += $fiber->start($i);
    $alive[$i] = $fiber;
    if (count($alive) === 1000 || $i === $n - 1) {
        foreach ($alive as $j => $f) {
            $f->resume($j);
            $sum += $f->getReturn();
        }
        $alive = [];
    }
}
echo "fibers=$n sum=$sum\n";
