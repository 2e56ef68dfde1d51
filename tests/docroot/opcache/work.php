<?php
// Work for the opcache stress test: includes a library file (which the test
// rewrites while requests run), calls into it, and prints a checkable line.
require __DIR__ . '/lib.php';
$n = (int) ($_GET['n'] ?? 0);
$shape = new OpcacheStressShape($n);
echo 'n=', $n, ' area=', $shape->area(), ' version=', opcache_stress_version(), "\n";
