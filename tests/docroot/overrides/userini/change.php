<?php
// ../change.php under this directory's .user.ini.
require dirname(__DIR__) . '/change.php';
