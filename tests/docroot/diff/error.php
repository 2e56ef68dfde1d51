<?php
// Errors of every kind, with display_errors off (the default profile: logged
// to FCGI_STDERR, which nginx writes as "FastCGI sent in stderr") or on (the
// display profile). ?kind= picks one; ?out=1 prints something first, so the
// headers are sent before the error.
if (!empty($_GET['out'])) {
    echo "output before the error\n";
}
if (!empty($_GET['display'])) {
    ini_set('display_errors', $_GET['display']);
}
switch ($_GET['kind'] ?? '') {
    case 'warning':
        echo $undefined_variable;
        echo "after the warning\n";
        break;
    case 'notice':
        trigger_error('a user notice', E_USER_NOTICE);
        echo "after the notice\n";
        break;
    case 'deprecated':
        echo strlen(null), "\n";
        break;
    case 'silenced':
        echo @$undefined_variable, "silenced\n";
        echo var_export(error_get_last()['message'] ?? null, true), "\n";
        break;
    case 'reporting_off':
        error_reporting(0);
        echo $undefined_variable, "not reported\n";
        break;
    case 'handler':
        set_error_handler(function (int $no, string $message) {
            echo "handled: $message\n";
            return true;
        });
        echo $undefined_variable;
        break;
    case 'undefined_function':
        undefined_function();
        break;
    case 'exception':
        throw new RuntimeException('boom');
    case 'exception_handler':
        set_exception_handler(function (Throwable $e) {
            echo 'handler caught: ', $e->getMessage(), "\n";
        });
        throw new LogicException('to the handler');
    case 'user_error':
        trigger_error('a user error', E_USER_ERROR);
        echo "not reached\n";
        break;
    case 'compile_error':
        include __DIR__ . '/redeclare.inc';
        break;
    case 'parse_error_include':
        include __DIR__ . '/broken.inc';
        break;
    case 'memory':
        ini_set('memory_limit', '4M');
        $big = str_repeat('x', 8 * 1024 * 1024);
        break;
    case 'timeout':
        set_time_limit(1);
        for ($i = 0; ; $i++) { $i %= 1000; }
    case 'exit_code':
        echo "before exit\n";
        exit(3);
    case 'exit_string':
        exit("exit with a message\n");
    case 'error_log':
        error_log('a message from error_log()');
        echo "logged\n";
        break;
    case 'error_log_multi':
        error_log('first message');
        echo "between\n";
        error_log('second message');
        trigger_error('third, a warning', E_USER_WARNING);
        break;
    case 'error_log_newline':
        error_log("line one\nline two");
        break;
    case 'error_log_long':
        error_log('long:' . str_repeat('0123456789', 300));
        break;
    case 'open_outside':
        // Refused (with a warning) under open_basedir.
        echo file_get_contents('/etc/hostname') === false ? "refused\n" : "read\n";
        break;
    case 'display_stderr':
        // "stderr" sends displayed errors to stderr only for the cli and cgi SAPIs.
        ini_set('display_errors', 'stderr');
        echo $undefined_variable, "after\n";
        break;
}
