<?php
// register_shutdown_function(): when shutdown functions run and what their
// output and headers do. ?mode= picks a scenario.
switch ($_GET['mode'] ?? '') {
    case 'order':
        register_shutdown_function(function () {
            echo "first\n";
            register_shutdown_function(fn () => print("registered during shutdown\n"));
        });
        register_shutdown_function(fn (string $what) => print("second, $what\n"), 'with an argument');
        echo "main\n";
        break;
    case 'exit':
        register_shutdown_function(fn () => print("shutdown after exit\n"));
        echo "main\n";
        exit(3);
    case 'fatal':
        register_shutdown_function(function () {
            $error = error_get_last();
            echo 'shutdown sees: ', $error['message'] ?? '(nothing)', "\n";
        });
        undefined_function();
        break;
    case 'header':
        // No output yet when the function runs: its header still goes out.
        register_shutdown_function(function () {
            header('X-From-Shutdown: 1');
            http_response_code(203);
            echo "from shutdown\n";
        });
        break;
    case 'exception':
        register_shutdown_function(fn () => print("shutdown after an exception\n"));
        throw new RuntimeException('uncaught, then shutdown');
    case 'destructor':
        $object = new class {
            public function __destruct()
            {
                echo "destructor\n";
            }
        };
        register_shutdown_function(fn () => print("shutdown function\n"));
        echo "main\n";
        break;
}
