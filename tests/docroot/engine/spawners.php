<?php
// Starts a process through each of PHP's spawners (tfpm wraps them all).
echo trim(shell_exec('echo shell')), ' ', exec('echo exec'), ' ';
$p = proc_open(['echo', 'proc'], [1 => ['pipe', 'w']], $pipes);
echo trim(stream_get_contents($pipes[1])), "\n";
fclose($pipes[1]);
proc_close($p);
