<?php
// Sleeps ?ms= milliseconds (at most 10 s), then says so: for concurrency tests.
$ms = min(max((int)($_GET['ms'] ?? 0), 0), 10000);
usleep($ms * 1000);
echo "slept $ms";
