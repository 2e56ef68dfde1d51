<?php
// Debian's autoloaders (/usr/share/php) for the packages the app uses, and
// one for the app's own classes (App\ is src/).
require_once 'Symfony/Bundle/FrameworkBundle/autoload.php';
require_once 'Symfony/Bundle/TwigBundle/autoload.php';
require_once 'Symfony/Bridge/Twig/autoload.php';
require_once 'Twig/autoload.php';
require_once 'Doctrine/DBAL/autoload.php';

spl_autoload_register(static function (string $class): void {
    if (strncmp($class, 'App\\', 4) === 0) {
        $file = __DIR__ . '/' . str_replace('\\', '/', substr($class, 4)) . '.php';
        if (is_file($file)) {
            require $file;
        }
    }
});
