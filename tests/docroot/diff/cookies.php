<?php
// Cookies both ways: ?op=show prints $_COOKIE as PHP parsed the Cookie
// header(s); ?op=set sends a range of Set-Cookie forms (fixed expiry dates
// only, since Max-Age would depend on the clock).
require __DIR__ . '/show.inc';

if (($_GET['op'] ?? 'show') === 'set') {
    setcookie('plain', 'v1');
    setcookie('spaced', 'a b;c,d');
    setrawcookie('raw', 'r%20v');
    setcookie('gone', '');
    setcookie('full', 'f', [
        'expires' => 1,
        'path' => '/p',
        'domain' => 'example.com',
        'secure' => true,
        'httponly' => true,
        'samesite' => 'Strict',
    ]);
    setcookie('plain', 'v2');
}
show('$_COOKIE', $_COOKIE);
show('HTTP_COOKIE', $_SERVER['HTTP_COOKIE'] ?? '(unset)');
