<?php
// What a child process inherits: its blocked-signal mask must be empty.
$proc = proc_open(['grep', '-E', '^(SigBlk|SigIgn):', '/proc/self/status'], [1 => ['pipe', 'w']], $pipes);
$out = stream_get_contents($pipes[1]);
proc_close($proc);
echo $out, shell_exec("grep -E '^SigBlk:' /proc/self/status");
