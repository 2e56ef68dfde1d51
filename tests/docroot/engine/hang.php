<?php
// Blocks in C for a long time (?how=): the hard limit (request_terminate_timeout) must end it.
if (!isset($_GET['quiet'])) {
    echo "hanging\n";
    flush();
}
switch ($_GET['how'] ?? 'sleep') {
    case 'sleep':
        sleep(100);
        break;
    case 'usleep':
        for ($i = 0; $i < 100000; $i++) {
            usleep(10000);
        }
        break;
    case 'socket':
        // A read from a socket that never sends. PHP retries its poll() after
        // EINTR, so this thread cannot be interrupted before default_socket_timeout.
        $server = stream_socket_server('tcp://127.0.0.1:0');
        $client = stream_socket_client('tcp://' . stream_socket_get_name($server, false));
        $peer = stream_socket_accept($server);
        fread($client, 1);
        break;
}
echo "woke up\n";
