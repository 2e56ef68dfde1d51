<?php
// ini_get() of the settings named in ?k= (comma-separated); ?set[NAME]=VALUE
// tries ini_set() first and prints what it returned.
require __DIR__ . '/show.inc';
foreach ($_GET['set'] ?? [] as $name => $value) {
    show("ini_set($name)", ini_set($name, $value));
}
foreach (explode(',', $_GET['k'] ?? '') as $name) {
    show($name, ini_get($name));
}
