<?php
// A page behind Apache's mod_authnz_fcgi, and its own authorizer.
//
// mod_authnz_fcgi calls the FastCGI server in the AUTHORIZER role with
// SCRIPT_FILENAME set to the file the URL maps to, that is this script; like
// php-fpm, tfpm runs it, and its status decides: 200 lets the request
// through (Variable-* headers become request variables), anything else is
// the answer. Then Apache sends the request itself, as a RESPONDER.
if (($_SERVER['FCGI_ROLE'] ?? '') === 'AUTHORIZER') {
    $user = $_SERVER['REMOTE_USER'] ?? '';
    $password = $_SERVER['REMOTE_PASSWD'] ?? '';
    if ($user === 'alice' && $password === 'wonderland') {
        header('Variable-AUTHZ_CHECKED_BY: ' . ($_SERVER['FCGI_APACHE_ROLE'] ?? 'none'));
        exit;
    }
    http_response_code(401);
    header('WWW-Authenticate: Basic realm="tfpm interop"');
    // Not "denied: ...": Apache takes a body that starts like "word:" for a
    // URL to redirect to.
    echo "access denied for $user";
    exit;
}
$checker = $_SERVER['AUTHZ_CHECKED_BY'] ?? 'nobody';
echo "private page for {$_SERVER['REMOTE_USER']}, checked by $checker";
