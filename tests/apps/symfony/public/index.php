<?php
// Front controller of the Symfony test app (tests/frameworks.rs). Classic
// mode: one request, one kernel. Worker mode (tfpm's `worker`, FrankenPHP):
// the kernel is built once and serves every request the thread is given.
use App\Kernel;
use Symfony\Component\HttpFoundation\Request;

require dirname(__DIR__) . '/src/bootstrap.php';

$var = $_SERVER['APP_VAR_DIR'] ?? getenv('APP_VAR_DIR');
if (!is_string($var) || $var === '') {
    http_response_code(500);
    exit("APP_VAR_DIR is not set\n");
}
$kernel = new Kernel('prod', false, $var);

if (empty($_SERVER['FRANKENPHP_WORKER'])) {
    $request = Request::createFromGlobals();
    $response = $kernel->handle($request);
    $response->send();
    $kernel->terminate($request, $response);
    return;
}

// The app keeps running when a client goes away mid-response.
ignore_user_abort(true);
$serve = static function () use ($kernel): void {
    // Built from the superglobals tfpm set up for this request.
    $request = Request::createFromGlobals();
    $response = $kernel->handle($request);
    $response->send();
    $kernel->terminate($request, $response);
};
while (frankenphp_handle_request($serve)) {
    // Cycles left by the request, before the next one.
    gc_collect_cycles();
}
