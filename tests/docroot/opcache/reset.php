<?php
// opcache_reset() (?what=reset) or opcache_invalidate() of lib.php (?what=invalidate).
$what = $_GET['what'] ?? 'reset';
$done = $what === 'reset'
    ? opcache_reset()
    : opcache_invalidate(__DIR__ . '/lib.php', true);
echo $what, ' ', $done ? 'ok' : 'refused';
