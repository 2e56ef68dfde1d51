<?php
// Writes to the worker's own stdout and stderr, and logs through PHP:
// what catch_workers_output relays into the FPM log.
file_put_contents('php://stdout', "to stdout\n");
file_put_contents('php://stderr', "to stderr\n");
error_log('a PHP message');
file_put_contents('php://stderr', str_repeat('x', (int) ($_GET['long'] ?? 0)) . "\n");
file_put_contents('php://stderr', 'no newline');
echo "done";
