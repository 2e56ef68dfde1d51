<?php

namespace App\Http;

use Illuminate\Foundation\Http\Kernel as HttpKernel;

class Kernel extends HttpKernel
{
    protected $middleware = [];

    protected $middlewareGroups = [
        'web' => [
            \Illuminate\Cookie\Middleware\EncryptCookies::class,
            \Illuminate\Cookie\Middleware\AddQueuedCookiesToResponse::class,
            \Illuminate\Session\Middleware\StartSession::class,
            \Illuminate\View\Middleware\ShareErrorsFromSession::class,
            \Illuminate\Foundation\Http\Middleware\VerifyCsrfToken::class,
            \Illuminate\Routing\Middleware\SubstituteBindings::class,
        ],
    ];

    /** Changes each time the application boots (once per instance). */
    private string $bootId = '';
    /** Requests this instance has handled. */
    private int $served = 0;

    public function bootstrap()
    {
        if (!$this->app->hasBeenBootstrapped()) {
            $this->bootId = bin2hex(random_bytes(8));
        }
        parent::bootstrap();
    }

    public function handle($request)
    {
        ++$this->served;
        return parent::handle($request);
    }

    public function bootId(): string
    {
        return $this->bootId;
    }

    public function served(): int
    {
        return $this->served;
    }
}
