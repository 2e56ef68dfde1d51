<?php
// ../ini.php under the location that passes PHP_VALUE and PHP_ADMIN_VALUE.
require dirname(__DIR__) . '/ini.php';
