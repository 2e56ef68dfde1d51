<?php
// Reached through nginx's `index index.php` for /sub/: an internal redirect.
require dirname(__DIR__) . '/show.inc';
show_server(['SCRIPT_NAME', 'PHP_SELF', 'REQUEST_URI', 'DOCUMENT_URI', 'PATH_INFO']);
