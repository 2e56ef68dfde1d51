<?php
// ?fork: forks a child that exits at once, waits until it is a zombie, and
// does not reap it. Otherwise: counts this process's zombie children.
function zombies(): array {
    $found = [];
    foreach (glob('/proc/[0-9]*/stat') as $stat) {
        $fields = explode(' ', substr(strrchr((string) @file_get_contents($stat), ')'), 2));
        if (($fields[0] ?? '') === 'Z' && (int) ($fields[1] ?? 0) === getmypid()) {
            $found[] = $stat;
        }
    }
    return $found;
}
if (isset($_GET['fork'])) {
    $pid = pcntl_fork();
    if ($pid === 0) {
        exit(0);
    }
    while (count(zombies()) === 0) {
        usleep(1000);
    }
    echo "left a zombie\n";
} else {
    echo count(zombies()), " zombies\n";
}
