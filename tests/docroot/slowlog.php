<?php
// Runs for about 2 s in usleep() calls, a few frames deep (an include, a
// static method, a method, a function): what a slowlog entry shows.
require __DIR__ . '/slowlog_inc.php';
echo "done\n";
