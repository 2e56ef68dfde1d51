<?php
// Unbounded recursion through a C function (array_map calls back into PHP, so
// every level takes C stack) inside a Fiber with a small fiber.stack_size.
// PHP 8.2 has no stack guard: this overflows the fiber's C stack. PHP 8.3+
// throws an Error, unless zend.max_allowed_stack_size=-1.
ini_set('fiber.stack_size', '128K');
function down(int $n): int
{
    return $n <= 0 ? 0 : 1 + array_sum(array_map('down', [$n - 1]));
}
$fiber = new Fiber(function () {
    echo down(1000000);
});
$fiber->start();
