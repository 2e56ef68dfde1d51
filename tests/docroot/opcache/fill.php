<?php
// Runs opcache's shared memory full until it schedules a restart (out of
// memory, with more than opcache.max_wasted_percentage wasted): compiles a
// large script of its own in `dir` again and again, throwing each cached
// copy away with opcache_invalidate(), which counts it as wasted.
// Prints "restart scheduled" once opcache has, with its counts.
$dir = $_GET['dir'];
$file = "$dir/filler.php";
$line = '$a[] = "' . str_repeat('x', 80) . '" . $i++;' . "\n";
file_put_contents($file, "<?php\n\$a = [];\n\$i = 0;\n" . str_repeat($line, 2000) . "return count(\$a);\n");
for ($round = 0; $round < 10000; $round++) {
    include $file;
    opcache_invalidate($file, true);
    $status = opcache_get_status(false);
    if ($status === false || $status['restart_pending']) {
        break;
    }
}
$stats = $status ? $status['opcache_statistics'] : [];
$pending = $status && $status['restart_pending'];
echo $pending ? 'restart scheduled' : 'no restart', ' after ', $round + 1, ' rounds (',
    'oom ', $stats['oom_restarts'] ?? '-', ', hash ', $stats['hash_restarts'] ?? '-', ')';
