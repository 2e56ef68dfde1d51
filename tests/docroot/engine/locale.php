<?php
// setlocale() is per request and per thread: ?set=NAME switches, ?wait= ms waits.
$set = isset($_GET['set']) ? setlocale(LC_ALL, $_GET['set']) : null;
usleep((int) ($_GET['wait'] ?? 0) * 1000);
echo json_encode(['set' => $set, 'ctype' => setlocale(LC_CTYPE, '0'), 'numeric' => setlocale(LC_NUMERIC, '0')]);
