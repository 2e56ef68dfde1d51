<?php

namespace App;

use Illuminate\Foundation\Application as Base;
use Illuminate\Support\Facades\Facade;

/**
 * Laravel's application with everything it writes (the bootstrap caches,
 * storage: sessions, compiled views, the SQLite file) under a var dir
 * outside the source tree.
 */
final class Application extends Base
{
    /** The services that hold one request's state: made anew for the next. */
    private const REQUEST_SCOPED = [
        'session', 'session.store', \Illuminate\Session\Middleware\StartSession::class,
        'cookie', 'redirect', 'auth', 'auth.driver',
    ];

    private string $varDir;

    public function __construct(string $basePath, string $varDir)
    {
        $this->varDir = rtrim($varDir, '/');
        foreach (['bootstrap/cache', 'storage/framework/sessions', 'storage/framework/views', 'storage/logs'] as $dir) {
            if (!is_dir("$this->varDir/$dir")) {
                mkdir("$this->varDir/$dir", 0777, true);
            }
        }
        parent::__construct($basePath);
        $this->useStoragePath($this->varDir . '/storage');
    }

    public function bootstrapPath($path = '')
    {
        return $this->varDir . '/bootstrap' . ($path !== '' ? DIRECTORY_SEPARATOR . $path : '');
    }

    /**
     * For worker mode: forgets the instances of the request-scoped services
     * (and what the facades resolved) so that the next request builds its
     * own session, cookie jar and redirector, never the last client's.
     */
    public function forgetRequestState(): void
    {
        foreach (self::REQUEST_SCOPED as $service) {
            $this->forgetInstance($service);
        }
        Facade::clearResolvedInstances();
    }
}
