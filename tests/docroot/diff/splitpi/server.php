<?php
// The path variables as seen from this directory's nginx location (see ../server.php).
require dirname(__DIR__) . '/server.php';
