<?php
// opcache is loaded and caches: hello.php was requested before this.
require __DIR__ . '/show.inc';
$status = opcache_get_status(false);
show('opcache_get_status() is an array', is_array($status));
show('opcache_enabled', $status['opcache_enabled'] ?? null);
show('hello.php cached', opcache_is_script_cached(__DIR__ . '/hello.php'));
show('hits > 0', ($status['opcache_statistics']['hits'] ?? 0) > 0);
show('cached scripts > 0', ($status['opcache_statistics']['num_cached_scripts'] ?? 0) > 0);
$config = opcache_get_configuration();
show('directives opcache.enable', $config['directives']['opcache.enable'] ?? null);
show('directives opcache.validate_timestamps', $config['directives']['opcache.validate_timestamps'] ?? null);
