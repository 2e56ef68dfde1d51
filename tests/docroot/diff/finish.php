<?php
// fastcgi_finish_request(): the client gets what was output so far and the
// script runs on. What it does afterwards goes to a marker file named by ?id=
// in upload_tmp_dir, which finish_check.php prints. ?mode= picks a scenario.
// A shutdown function of the scenario writes "<marker>-shutdown" first.
$marker = ini_get('upload_tmp_dir') . '/finish-' . basename($_GET['id'] ?? 'none');
$notes = [];
switch ($_GET['mode'] ?? '') {
    case 'basic':
        echo "sent\n";
        $notes[] = 'first: ' . var_export(fastcgi_finish_request(), true);
        echo "dropped\n";
        $notes[] = 'second: ' . var_export(fastcgi_finish_request(), true);
        break;
    case 'headers':
        http_response_code(202);
        header('X-Before: 1');
        fastcgi_finish_request();
        header('X-After: 1');
        $notes[] = 'headers_sent: ' . var_export(headers_sent(), true);
        $notes[] = 'http_response_code: ' . var_export(http_response_code(), true);
        break;
    case 'buffered':
        ob_start();
        echo "in an output buffer\n";
        fastcgi_finish_request();
        $notes[] = 'ob level: ' . ob_get_level();
        break;
    case 'empty':
        fastcgi_finish_request();
        break;
    case 'log_after':
        echo "sent\n";
        fastcgi_finish_request();
        error_log('logged after fastcgi_finish_request()');
        break;
    case 'output_after':
        // Output after the end goes nowhere. (Kept under php-fpm's 8 KiB
        // output buffer: more than that, php-fpm writes to the kept
        // connection, and nginx may read it as the next request's answer.)
        echo "sent\n";
        fastcgi_finish_request();
        echo str_repeat('x', 4000);
        $notes[] = 'ran on after the output';
        break;
    case 'shutdown':
        register_shutdown_function(function () use ($marker) {
            file_put_contents($marker . '-shutdown', 'shutdown ran');
        });
        echo "sent\n";
        fastcgi_finish_request();
        break;
}
usleep(100000);
// Written last (after any shutdown function registered above) and renamed
// into place, so that finish_check.php never sees it half-written.
register_shutdown_function(function () use ($marker, $notes) {
    file_put_contents("$marker.tmp", implode("\n", $notes) . "\n");
    rename("$marker.tmp", $marker);
});
