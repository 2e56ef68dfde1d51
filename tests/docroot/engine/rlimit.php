<?php
// With ?lower=1, lowers the process's file-size limit to one byte (as
// php-src's ext/opcache/tests/file_cache_error.phpt does), then writes
// 4 KiB to a new file in either case and says how much got written.
if (($_GET['lower'] ?? '') === '1') {
    var_dump(posix_setrlimit(POSIX_RLIMIT_FSIZE, 1, -1));
}
$file = tempnam(sys_get_temp_dir(), 'tfpm-rlimit');
$written = @file_put_contents($file, str_repeat('x', 4096));
unlink($file);
echo 'written=', var_export($written, true), "\n";
