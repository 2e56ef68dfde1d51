<?php
// Host callbacks called from inside a Fiber (?op=): output, flush, header,
// body, warnings, fatal errors, exit, exceptions, getenv.
$op = $_GET['op'] ?? 'echo';
$fiber = new Fiber(function () use ($op) {
    switch ($op) {
        case 'echo':
            echo str_repeat('f', 100000), "\n";
            break;
        case 'flush':
            for ($i = 0; $i < 50; $i++) {
                echo "chunk $i\n";
                flush();
            }
            break;
        case 'header':
            header('X-From-Fiber: yes');
            http_response_code(201);
            echo "created\n";
            break;
        case 'input':
            echo 'input=', md5(file_get_contents('php://input')), "\n";
            break;
        case 'warning':
            trigger_error('warning from a fiber', E_USER_WARNING);
            echo "after warning\n";
            break;
        case 'fatal':
            undefined_function_in_fiber();
            break;
        case 'exit':
            echo "exiting\n";
            exit(3);
        case 'throw':
            throw new RuntimeException('thrown in a fiber');
        case 'getenv':
            echo 'script=', getenv('SCRIPT_NAME'), "\n";
            break;
    }
    Fiber::suspend();
});
$fiber->start();
echo "main done\n";
