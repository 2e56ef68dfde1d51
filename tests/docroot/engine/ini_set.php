<?php
// Tries ini_set(?name=, ?value=), then prints "set|refused" and the value in force.
$name = $_GET['name'] ?? '';
$done = ini_set($name, $_GET['value'] ?? '') === false ? 'refused' : 'set';
echo $done, ' ', ini_get($name);
