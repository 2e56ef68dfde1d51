<?php
// Streams "first", then waits (up to 20 s) for the file ?go= to exist before it
// sends "second": with fastcgi_buffering off the client reads "first" while
// the script is still running.
echo "first\n";
flush();
$deadline = microtime(true) + 20;
while (!file_exists($_GET['go']) && microtime(true) < $deadline) {
    usleep(5000);
}
echo file_exists($_GET['go']) ? "second\n" : "timeout\n";
