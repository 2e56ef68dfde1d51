<?php
// The environment a script sees: which names $_SERVER, $_ENV and getenv()
// hold (names only: values such as REMOTE_PORT differ by nature), in what
// order, and how getenv()/putenv() treat FastCGI params. ?what= picks one.
require __DIR__ . '/show.inc';

$sorted = function (array $names): array {
    sort($names);
    return $names;
};
switch ($_GET['what'] ?? '') {
    case 'server_keys':
        show('$_SERVER keys', $sorted(array_keys($_SERVER)));
        break;
    case 'server_order':
        // php-fpm builds $_SERVER from its param hash: the order is observable.
        show('$_SERVER keys in order', array_keys($_SERVER));
        break;
    case 'env_keys':
        show('$_ENV keys', $sorted(array_keys($_ENV)));
        break;
    case 'getenv_keys':
        show('getenv() keys', $sorted(array_keys(getenv())));
        break;
    case 'getenv':
        foreach (['REQUEST_METHOD', 'SCRIPT_NAME', 'HTTP_HOST', 'HTTP_X_CUSTOM', 'HTTP_PROXY', 'PATH', 'HOME', 'NOPE'] as $name) {
            show("getenv($name)", getenv($name));
        }
        show('getenv(REQUEST_METHOD, local_only)', getenv('REQUEST_METHOD', true));
        show('$_ENV[REQUEST_METHOD]', $_ENV['REQUEST_METHOD'] ?? '(unset)');
        break;
    case 'putenv':
        show('before', getenv('TFPM_DIFF_PUT'));
        show('putenv', putenv('TFPM_DIFF_PUT=set'));
        show('after', getenv('TFPM_DIFF_PUT'));
        show('in $_SERVER', isset($_SERVER['TFPM_DIFF_PUT']));
        break;
    case 'putenv_param':
        // putenv() over a FastCGI param: getenv() gives the param first in php-fpm.
        show('putenv', putenv('REQUEST_METHOD=CHANGED'));
        show('getenv(REQUEST_METHOD)', getenv('REQUEST_METHOD'));
        show('$_SERVER[REQUEST_METHOD]', $_SERVER['REQUEST_METHOD']);
        break;
    case 'globals':
        show('$_GET', $_GET);
        show('$_COOKIE', $_COOKIE);
        show('$_REQUEST', $_REQUEST);
        break;
}
