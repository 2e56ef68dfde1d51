<?php
// The calling thread's nice value (Linux keeps one per thread), before and
// after proc_nice(?by=N) when asked.
function thread_nice(): int {
    $stat = file_get_contents('/proc/thread-self/stat');
    $fields = explode(' ', substr($stat, strrpos($stat, ')') + 2));
    return (int) $fields[16]; // field 19 of stat: nice
}
$before = thread_nice();
$by = (int) ($_GET['by'] ?? 0);
if ($by) {
    proc_nice($by);
}
echo json_encode(['before' => $before, 'after' => thread_nice()]);
