<?php
// ../vars.php as seen from this directory's nginx location.
require dirname(__DIR__) . '/vars.php';
