<?php
// Which worker process answered, and a setting from php.ini.
echo getmypid(), ' ', ini_get('precision'), "\n";
