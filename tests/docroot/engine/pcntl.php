<?php
// Process-wide pcntl calls are refused with a warning and return false.
$results = [];
$calls = [
    'pcntl_sigprocmask' => [SIG_BLOCK, [SIGUSR1]],
    'pcntl_sigtimedwait' => [[SIGUSR1], null, 0, 1],
    'pcntl_exec' => ['/bin/true'],
];
foreach ($calls as $fn => $args) {
    $results[$fn] = $fn(...$args);
    $results[$fn . '_warning'] = error_get_last()['message'] ?? null;
    error_clear_last();
}
echo json_encode($results);
