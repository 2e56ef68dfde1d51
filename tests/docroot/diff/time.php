<?php
// REQUEST_TIME and REQUEST_TIME_FLOAT: their types, that they agree, and that
// they are this request's start (not the process's or the thread's).
require __DIR__ . '/show.inc';

$int = $_SERVER['REQUEST_TIME'] ?? null;
$float = $_SERVER['REQUEST_TIME_FLOAT'] ?? null;
$now = microtime(true);
show('REQUEST_TIME is int', is_int($int));
show('REQUEST_TIME_FLOAT is float', is_float($float));
show('REQUEST_TIME == (int) REQUEST_TIME_FLOAT', $int === (int) $float);
show('REQUEST_TIME_FLOAT <= now', $float <= $now);
show('started less than 2 s ago', $now - $float < 2.0);
show('REQUEST_TIME <= time()', $int <= time());
show('$_SERVER copy stable', $_SERVER['REQUEST_TIME_FLOAT'] === $float);
