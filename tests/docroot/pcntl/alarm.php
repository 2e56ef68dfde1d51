<?php
// ?set=N: sets an alarm of N seconds, then sleeps ?sleep seconds (float).
// Prints what pcntl_alarm() returned along the way.
if (isset($_GET['set'])) {
    echo "previous: ", pcntl_alarm((int) $_GET['set']), "\n";
}
if (isset($_GET['again'])) {
    echo "left: ", pcntl_alarm((int) $_GET['again']), "\n";
}
flush();
usleep((int) ((float) ($_GET['sleep'] ?? 0) * 1e6));
echo "done\n";
