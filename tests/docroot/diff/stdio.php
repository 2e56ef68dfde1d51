<?php
// Where php://stdout, php://stderr and php://output go: only php://output is
// the response under php-fpm; the other two are the process's fds 1 and 2.
$target = $_GET['to'] ?? 'output';
$written = file_put_contents("php://$target", "written to php://$target\n");
echo 'bytes: ', var_export($written, true), "\n";
