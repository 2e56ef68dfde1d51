<?php
// Worker mode's test app (tests/worker_mode.rs): booted once per worker
// thread, then it serves requests through frankenphp_handle_request().
// What the boot saw, and a counter, show whether a request reached the
// same instance; ?action= picks what the request does.
ignore_user_abort(true);
$boot = [
    'id' => bin2hex(random_bytes(6)),
    'worker' => $_SERVER['FRANKENPHP_WORKER'] ?? null,
    'getenv' => getenv('FRANKENPHP_WORKER'),
    'app_env' => $_SERVER['APP_MODE'] ?? null,
];
$count = 0;

// A session save handler set once, at boot (as Symfony's session storage
// does): it must serve every request. It counts the sessions it wrote.
final class CountingSessionHandler extends SessionHandler
{
    public static int $writes = 0;

    public function write(string $id, string $data): bool
    {
        self::$writes++;
        return parent::write($id, $data);
    }
}
session_set_save_handler(new CountingSessionHandler(), false);

// Opened at boot, used by later requests: they must keep working.
$bootFile = fopen(__FILE__, 'r');
$bootInput = fopen('php://input', 'r');
$dieAfter = false;

function show(array $boot, int $count): void
{
    header('Content-Type: application/json');
    echo json_encode([
        'boot' => $boot,
        'count' => $count,
        'get' => $_GET,
        'post' => $_POST,
        'cookie' => $_COOKIE,
        'request' => $_REQUEST,
        'files' => array_map(fn ($f) => [$f['name'], $f['size'], file_get_contents($f['tmp_name'])], $_FILES),
        'worker_in_server' => isset($_SERVER['FRANKENPHP_WORKER']),
        'app_env_in_server' => isset($_SERVER['APP_MODE']),
        'method' => $_SERVER['REQUEST_METHOD'],
        'uri' => $_SERVER['REQUEST_URI'] ?? null,
        'memory' => memory_get_usage(),
        'status' => http_response_code(),
    ]);
}

$handler = function () use (&$count, &$dieAfter, $boot, $bootFile, $bootInput) {
    $count++;
    switch ($_GET['action'] ?? 'show') {
        case 'status':
            http_response_code(404);
            header('X-Only-Once: yes');
            echo 'not here';
            break;
        case 'ob':
            ob_start();
            echo 'left in a buffer';
            break;
        case 'throw':
            throw new RuntimeException('boom in the handler');
        case 'exit':
            echo 'said goodbye';
            exit(3);
        case 'fatal':
            // A fatal error proper (an undefined function throws an Error).
            ini_set('memory_limit', '16M');
            $big = str_repeat('x', 32 * 1024 * 1024);
            break;
        case 'timeout':
            set_time_limit(1);
            for (;;) {
            }
        case 'finish':
            echo 'delivered';
            frankenphp_finish_request();
            echo 'dropped';
            file_put_contents($_GET['marker'], 'ran on');
            break;
        case 'fiber':
            $fiber = new Fiber(function (string $x): string {
                $y = Fiber::suspend($x . ' suspended');
                return $y . ' returned';
            });
            $first = $fiber->start('fiber');
            $fiber->resume('fiber');
            echo $first, ', ', $fiber->getReturn();
            break;
        case 'nested':
            try {
                frankenphp_handle_request(fn () => null);
            } catch (RuntimeException $e) {
                echo get_class($e), ': ', $e->getMessage();
            }
            break;
        case 'session':
            session_start();
            if (isset($_GET['user'])) {
                $_SESSION['user'] = $_GET['user'];
            }
            header('Content-Type: application/json');
            echo json_encode([
                'id' => session_id(),
                'session' => $_SESSION,
                'writes' => CountingSessionHandler::$writes,
            ]);
            break;
        case 'linger':
            // Until the client leaves (at most 5 s); then says whether it saw that.
            file_put_contents($_GET['marker'], 'in flight');
            for ($i = 0; $i < 500 && !connection_aborted(); $i++) {
                echo ' ';
                flush();
                usleep(10000);
            }
            file_put_contents($_GET['marker'] . '.done', connection_aborted() ? 'aborted' : 'connected');
            break;
        case 'handles':
            rewind($bootFile);
            echo trim(fgets($bootFile)), '|', stream_get_contents($bootInput), '|',
                file_get_contents('php://input');
            break;
        case 'persist':
            // ini_set() and putenv() outlive the request (as under FrankenPHP).
            if (isset($_GET['set'])) {
                ini_set('precision', '5');
                putenv('TFPM_WORKER_PERSIST=' . $_GET['set']);
            }
            echo ini_get('precision'), ' ', getenv('TFPM_WORKER_PERSIST');
            break;
        case 'die_after':
            echo 'served by ', $boot['id'];
            $dieAfter = true;
            break;
        case 'opcache':
            // Whether this request runs with opcache's cache, and one is pending.
            $status = opcache_get_status(false);
            header('Content-Type: application/json');
            echo json_encode([
                'boot' => $boot['id'],
                'enabled' => $status !== false && $status['opcache_enabled'],
                'pending' => $status !== false && $status['restart_pending'],
            ]);
            break;
        case 'sleep':
            file_put_contents($_GET['marker'], 'in flight');
            usleep((int) $_GET['ms'] * 1000);
            echo 'slept';
            break;
        default:
            show($boot, $count);
    }
};

while (frankenphp_handle_request($handler)) {
    if ($dieAfter) {
        die(); // after the response: the script starts again
    }
    gc_collect_cycles();
}
