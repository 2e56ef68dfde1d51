<?php
// Infinite recursion through an internal function: each level is a C call
// (array_map -> zend_call_function -> execute_ex), so the thread's C stack
// overflows. PHP 8.2 has no stack guard: the process dies of SIGSEGV. PHP
// 8.3+ throws an Error instead, unless zend.max_allowed_stack_size=-1.
ini_set('memory_limit', '-1');
function down($n) { return array_map('down', [$n + 1]); }
down(0);
echo "unreachable\n";
