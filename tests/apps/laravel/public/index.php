<?php
// Front controller of the Laravel test app (tests/frameworks.rs). Classic
// mode: one request, one application. Worker mode (tfpm's `worker`,
// FrankenPHP): the application boots once and serves every request the
// thread is given, with its request-scoped services made anew each time.
use Illuminate\Contracts\Http\Kernel;
use Illuminate\Http\Request;

$app = require dirname(__DIR__) . '/bootstrap/app.php';
$kernel = $app->make(Kernel::class);

if (empty($_SERVER['FRANKENPHP_WORKER'])) {
    $request = Request::capture();
    $response = $kernel->handle($request);
    $response->send();
    $kernel->terminate($request, $response);
    return;
}

// Config, service providers, routes: once.
$kernel->bootstrap();
// The app keeps running when a client goes away mid-response.
ignore_user_abort(true);
$serve = static function () use ($app, $kernel): void {
    $app->forgetRequestState();
    $request = Request::capture();
    $response = $kernel->handle($request);
    $response->send();
    $kernel->terminate($request, $response);
};
while (frankenphp_handle_request($serve)) {
    gc_collect_cycles();
}
