<?php
// Fibers (PHP 8.1+): two tasks take turns inside one request, each suspending after every step.
header('Content-Type: text/plain; charset=utf-8');

function task(string $name, int $steps): Fiber
{
    return new Fiber(function () use ($name, $steps): string {
        for ($i = 1; $i <= $steps; $i++) {
            echo "$name: step $i of $steps\n";
            Fiber::suspend($i);
        }
        return "$name done";
    });
}

$tasks = [task('fiber A', 3), task('fiber B', 2)];
foreach ($tasks as $fiber) {
    $fiber->start();
}
while ($tasks) {
    foreach ($tasks as $key => $fiber) {
        if ($fiber->isTerminated()) {
            echo 'main: ', $fiber->getReturn(), "\n";
            unset($tasks[$key]);
        } else {
            $fiber->resume();
        }
    }
}
echo "main: all fibers finished\n";
