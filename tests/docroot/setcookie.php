<?php
// Two cookies: each must arrive as its own Set-Cookie header.
setcookie('tfpm_first', 'one', ['path' => '/', 'httponly' => true]);
setcookie('tfpm_second', 'two words', ['path' => '/', 'samesite' => 'Lax']);
echo "cookies set";
