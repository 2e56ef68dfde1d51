<?php
// Relative paths resolve against the working directory, which php-fpm sets
// to the script's directory: this works only if the daemon does the same.
require dirname(__DIR__) . '/show.inc';
show('cwd is the script dir', getcwd() === __DIR__);
show('file_exists(included.inc)', file_exists('included.inc'));
show('include ./included.inc', include './included.inc');
show('realpath(.)', realpath('.'));
