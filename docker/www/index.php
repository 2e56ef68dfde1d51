<?php
// The page docker/docker-compose.yml serves and tests/docker.rs checks: who
// answered (SAPI, PHP, opcache, the container's host name) and a sum of
// squares the test computes on its own side.
header('Content-Type: text/plain; charset=utf-8');
$n = max(1, (int) ($_GET['n'] ?? 10));
$status = function_exists('opcache_get_status') ? opcache_get_status(false) : false;
echo 'sapi: ', PHP_SAPI, "\n";
echo 'php: ', PHP_VERSION, PHP_ZTS ? ' zts' : ' nts', "\n";
echo 'opcache: ', ($status && $status['opcache_enabled']) ? 'on' : 'off', "\n";
echo 'host: ', gethostname(), "\n";
echo "sum of squares 1..$n: ", array_sum(array_map(fn ($i) => $i * $i, range(1, $n))), "\n";
