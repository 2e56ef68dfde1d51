<?php
// Output buffering, flush() and headers_sent(): ?mode= picks one scenario.
// Each prints what PHP reports along the way, so differences in when the
// daemon considers headers sent, or in the initial buffer level, show up.
require __DIR__ . '/show.inc';

switch ($_GET['mode'] ?? '') {
    case 'level':
        // output_buffering is not set by the harness: the level is the SAPI's default.
        $level = ob_get_level();
        $status = ob_get_status(true);
        show('ob_get_level()', $level);
        show('handlers', array_column($status, 'name'));
        break;
    case 'headers_sent':
        $before = headers_sent();
        echo "body\n";
        $after = headers_sent($file, $line);
        show('before output', $before);
        show('after output', $after);
        show('where', basename((string) $file) . ':' . $line);
        break;
    case 'header_after_output':
        // Too late: a warning (logged) and no X-Late header.
        echo "body\n";
        header('X-Late: 1');
        show('header_after_output headers_sent', headers_sent());
        break;
    case 'header_after_buffered_output':
        ob_start();
        echo "buffered\n";
        header('X-Late: 1');
        show('headers_sent while buffered', headers_sent());
        ob_end_flush();
        break;
    case 'flush':
        echo "one\n";
        flush();
        show('headers_sent after flush', headers_sent());
        echo "two\n";
        flush();
        break;
    case 'flush_in_buffer':
        ob_start();
        echo "in buffer\n";
        flush();
        show('headers_sent after flush() inside ob', headers_sent());
        ob_end_flush();
        break;
    case 'nested':
        ob_start();
        echo "outer ";
        ob_start();
        echo "inner";
        $inner = ob_get_clean();
        echo strtoupper($inner), "\n";
        show('level inside', ob_get_level());
        ob_end_flush();
        show('level after', ob_get_level());
        break;
    case 'callback':
        ob_start(fn (string $buffer) => str_rot13($buffer));
        echo "hello through rot13\n";
        break;
    case 'chunk_size':
        ob_start(fn (string $buffer) => "[$buffer]", 4);
        echo 'ab', 'cdef', 'g', "\n";
        ob_end_flush();
        break;
    case 'clean':
        echo "dropped";
        ob_start();
        echo "also dropped";
        ob_end_clean();
        echo "\nkept\n";
        break;
    case 'implicit':
        ob_implicit_flush(true);
        echo "implicit one\n";
        show('headers_sent', headers_sent());
        break;
    case 'gzip':
        // Content-Encoding negotiated from Accept-Encoding by ob_gzhandler.
        ob_start('ob_gzhandler');
        echo str_repeat("compress me\n", 20);
        break;
    case 'zlib':
        ini_set('zlib.output_compression', '1');
        echo str_repeat("zlib output compression\n", 20);
        break;
    case 'length':
        // A script that sets Content-Length itself.
        $body = "exactly twenty bytes";
        header('Content-Length: ' . strlen($body));
        echo $body;
        break;
}
