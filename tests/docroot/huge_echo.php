<?php
// One echo of a ?mb= MiB string (default 64): the response must stream, not
// be copied whole.
$s = str_repeat('h', (int) ($_GET['mb'] ?? 64) << 20);
echo $s;
