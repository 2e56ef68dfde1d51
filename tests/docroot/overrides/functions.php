<?php
// Whether each function named in ?f= (comma-separated) exists.
foreach (explode(',', $_GET['f'] ?? '') as $name) {
    echo $name, ': ', function_exists($name) ? 'yes' : 'no', "\n";
}
