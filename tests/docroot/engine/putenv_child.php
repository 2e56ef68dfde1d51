<?php
// What each way of starting a process passes on of this request's putenv()
// changes (?set=1 makes them): TFPM_A is set (with quotes and a space in
// it), TFPM_B unset. Each child prints both as it sees them.
if (!empty($_GET['set'])) {
    putenv("TFPM_A=it's a b");
    putenv('TFPM_B');
}
$show = 'echo "[${TFPM_A-unset}|${TFPM_B-unset}]"';
$seen = [];
$seen['exec'] = exec($show);
$seen['shell_exec'] = trim(shell_exec($show));
$seen['backticks'] = trim(`$show`);
ob_start();
system($show);
passthru($show);
[$seen['system'], $seen['passthru']] = explode("\n", trim(ob_get_clean()));
$p = popen($show, 'r');
$seen['popen'] = trim(fread($p, 100));
pclose($p);
foreach (['proc_open' => $show, 'proc_open[]' => ['/bin/sh', '-c', $show]] as $how => $cmd) {
    $proc = proc_open($cmd, [1 => ['pipe', 'w']], $pipes);
    $seen[$how] = trim(stream_get_contents($pipes[1]));
    proc_close($proc);
}
$proc = proc_open($show, [1 => ['pipe', 'w']], $pipes, null, ['TFPM_B' => 'own']);
$seen['proc_open env'] = trim(stream_get_contents($pipes[1]));
proc_close($proc);
echo json_encode($seen);
