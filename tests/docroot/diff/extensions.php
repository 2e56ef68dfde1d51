<?php
// The loaded extensions and Zend extensions, sorted.
require __DIR__ . '/show.inc';
$extensions = get_loaded_extensions();
sort($extensions);
show('extensions', $extensions);
show('zend extensions', get_loaded_extensions(true));
