<?php
// The same recursion inside a Fiber with a 64 KiB stack: it runs into the
// fiber stack's guard page, and the process dies of SIGSEGV (on PHP 8.3+,
// only with zend.max_allowed_stack_size=-1; else it is an Error).
ini_set('memory_limit', '-1');
ini_set('fiber.stack_size', '64K');
function down($n) { return array_map('down', [$n + 1]); }
$fiber = new Fiber(function () { down(0); });
$fiber->start();
echo "unreachable\n";
