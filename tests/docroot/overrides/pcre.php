<?php
// One pattern that needs more than two backtracking steps: its result and
// preg_last_error_msg(), with whatever pcre.jit and pcre.backtrack_limit say.
var_dump(preg_match('/^test(.*)/', 'test1'), preg_last_error_msg(), ini_get('pcre.jit'));
