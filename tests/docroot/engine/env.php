<?php
// putenv() is per request: ?set=VALUE sets TFPM_ISOLATION, then waits for
// ?wait= milliseconds so that other requests run meanwhile.
if (isset($_GET['set'])) {
    putenv('TFPM_ISOLATION=' . $_GET['set']);
}
usleep((int) ($_GET['wait'] ?? 0) * 1000);
echo json_encode([
    'getenv' => getenv('TFPM_ISOLATION'),
    'in_all' => getenv()['TFPM_ISOLATION'] ?? null,
    'param' => getenv('SCRIPT_NAME'),
]);
