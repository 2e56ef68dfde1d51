<?php
// Process-wide state a script can read: locale, umask, time zone, user.
// php-fpm's worker inherits it from the master; tfpm shares one process.
require __DIR__ . '/show.inc';
show('setlocale(LC_ALL, 0)', setlocale(LC_ALL, 0));
show('umask()', sprintf('%04o', umask()));
show('date_default_timezone_get()', date_default_timezone_get());
show('mb_internal_encoding()', mb_internal_encoding());
show('get_current_user()', get_current_user());
show('posix_getuid() === getmyuid()', posix_getuid() === getmyuid());
show('gc_enabled()', gc_enabled());
show('realpath_cache_size() >= 0', realpath_cache_size() >= 0);
