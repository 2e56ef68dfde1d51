<?php

namespace App;

use App\Controller\NotesController;
use Symfony\Bundle\FrameworkBundle\FrameworkBundle;
use Symfony\Bundle\FrameworkBundle\Kernel\MicroKernelTrait;
use Symfony\Bundle\TwigBundle\TwigBundle;
use Symfony\Component\DependencyInjection\Loader\Configurator\ContainerConfigurator;
use Symfony\Component\HttpFoundation\Request;
use Symfony\Component\HttpFoundation\Response;
use Symfony\Component\HttpKernel\Kernel as BaseKernel;
use Symfony\Component\Routing\Loader\Configurator\RoutingConfigurator;

/**
 * The whole configuration is here, in PHP (Debian ships no YAML component
 * with these packages). Cache, logs, sessions and the SQLite file live
 * under the var dir the front controller is given.
 */
final class Kernel extends BaseKernel
{
    use MicroKernelTrait;

    private string $varDir;
    /** Changes each time this kernel boots (once per instance). */
    private string $bootId = '';
    /** Main requests this instance has handled. */
    private int $served = 0;

    public function __construct(string $environment, bool $debug, string $varDir)
    {
        $this->varDir = $varDir;
        parent::__construct($environment, $debug);
    }

    public function registerBundles(): iterable
    {
        yield new FrameworkBundle();
        yield new TwigBundle();
    }

    public function getProjectDir(): string
    {
        return \dirname(__DIR__);
    }

    public function getCacheDir(): string
    {
        return $this->varDir . '/cache/' . $this->environment;
    }

    public function getLogDir(): string
    {
        return $this->varDir . '/log';
    }

    public function boot()
    {
        if (!$this->booted) {
            $this->bootId = bin2hex(random_bytes(8));
        }
        parent::boot();
    }

    public function handle(Request $request, int $type = self::MAIN_REQUEST, bool $catch = true): Response
    {
        if ($type === self::MAIN_REQUEST) {
            ++$this->served;
        }
        return parent::handle($request, $type, $catch);
    }

    public function bootId(): string
    {
        return $this->bootId;
    }

    public function served(): int
    {
        return $this->served;
    }

    private function configureContainer(ContainerConfigurator $container): void
    {
        $container->parameters()->set('app.var_dir', $this->varDir);
        $container->extension('framework', [
            'secret' => 'tfpm-frameworks-test',
            'http_method_override' => false,
            'session' => [
                'storage_factory_id' => 'session.storage.factory.native',
                'handler_id' => 'session.handler.native_file',
                'save_path' => '%app.var_dir%/sessions',
                'name' => 'SYMFONY_SESSION',
                'cookie_samesite' => 'lax',
                // No session GC pass: bench/worker.sh's clients send no
                // cookie, so each request makes a session file, and a pass
                // scans them all (the same in every mode).
                'gc_probability' => 0,
            ],
            'php_errors' => ['log' => true],
            'router' => ['utf8' => true],
        ]);
        $container->extension('twig', [
            'default_path' => '%kernel.project_dir%/templates',
            'strict_variables' => true,
        ]);
        $services = $container->services()->defaults()->autowire()->autoconfigure();
        $services->set(Notes::class)->arg('$path', '%app.var_dir%/notes.sqlite');
        $services->set(NotesController::class)->public();
    }

    private function configureRoutes(RoutingConfigurator $routes): void
    {
        $routes->add('home', '/')
            ->controller([NotesController::class, 'home'])
            ->methods(['GET']);
        $routes->add('note_add', '/notes')
            ->controller([NotesController::class, 'add'])
            ->methods(['POST']);
        $routes->add('hello', '/hello/{name}')
            ->controller([NotesController::class, 'hello'])
            ->methods(['GET']);
    }
}
