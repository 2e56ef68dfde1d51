<?php
// Logs one line (to the web server, as FCGI_STDERR) and prints another.
error_log('a line for the web server log');
echo "out\n";
