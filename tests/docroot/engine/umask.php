<?php
// ?set=MASK: sets the umask and waits ?wait= ms; else creates a file and
// prints its mode and the umask this request sees.
if (isset($_GET['set'])) {
    umask(octdec($_GET['set']));
    usleep((int) ($_GET['wait'] ?? 0) * 1000);
    printf('%04o', umask());
    return;
}
$file = tempnam(sys_get_temp_dir(), 'tfpm-umask');
unlink($file);
touch($file);
clearstatcache();
printf('%04o %04o', umask(), fileperms($file) & 0777);
unlink($file);
