<?php
// The $_SERVER entries named in ?k= (comma-separated), "(unset)" if absent.
require __DIR__ . '/show.inc';
show_server(explode(',', $_GET['k'] ?? ''));
