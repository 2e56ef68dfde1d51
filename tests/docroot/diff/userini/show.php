<?php
// The settings the .user.ini files above this script give it.
require __DIR__ . '/../show.inc';
foreach (['precision', 'memory_limit', 'disable_functions'] as $name) {
    show($name, ini_get($name));
}
show('strlen works', strlen('abc') === 3);
show('ini_set(precision)', ini_set('precision', '9'));
