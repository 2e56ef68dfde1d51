<?php
// Forks; the child writes a file, echoes (?big more bytes, too) and sets a
// header (which must not reach the client), registers a shutdown function,
// and exits with ?code (or a fatal error with ?fatal). The parent waits and
// reports.
$dir = $_GET['dir'];
$parent = getmypid();
echo "before fork\n";
$pid = pcntl_fork();
if ($pid === 0) {
    register_shutdown_function(function () use ($dir) {
        file_put_contents("$dir/shutdown", "the child's shutdown function ran");
    });
    echo "the child's output joins the response\n";
    echo str_repeat('#', (int) ($_GET['big'] ?? 0));
    header('X-From-Child: yes');
    file_put_contents("$dir/child", getmypid() === $parent ? 'same pid' : 'own pid');
    if (isset($_GET['fatal'])) {
        undefined_function_in_the_child();
    }
    exit((int) $_GET['code']);
}
pcntl_waitpid($pid, $status);
echo "child exited with ", pcntl_wexitstatus($status), "\n";
echo file_get_contents("$dir/child"), "\n";
echo @file_get_contents("$dir/shutdown") ?: 'no shutdown function', "\n";
