<?php
// Debian's autoloader for the whole framework (/usr/share/php), one for the
// app's own classes (App\ is app/), and the application with its kernels.
require_once 'Illuminate/autoload.php';

spl_autoload_register(static function (string $class): void {
    if (strncmp($class, 'App\\', 4) === 0) {
        $file = dirname(__DIR__) . '/app/' . str_replace('\\', '/', substr($class, 4)) . '.php';
        if (is_file($file)) {
            require $file;
        }
    }
});

$var = $_SERVER['APP_VAR_DIR'] ?? getenv('APP_VAR_DIR');
if (!is_string($var) || $var === '') {
    throw new RuntimeException('APP_VAR_DIR is not set');
}
$app = new App\Application(dirname(__DIR__), $var);
$app->singleton(Illuminate\Contracts\Http\Kernel::class, App\Http\Kernel::class);
$app->singleton(Illuminate\Contracts\Debug\ExceptionHandler::class, App\Exceptions\Handler::class);

return $app;
