<?php

use Monolog\Handler\NullHandler;
use Monolog\Handler\StreamHandler;

// Errors go to stderr, which the FastCGI server logs; PHP's deprecation
// notices (many on a PHP newer than Laravel 8) go nowhere.
return [
    'default' => 'stderr',
    'deprecations' => 'null',
    'channels' => [
        'stderr' => [
            'driver' => 'monolog',
            'handler' => StreamHandler::class,
            'with' => ['stream' => 'php://stderr'],
            'level' => 'warning',
        ],
        'null' => [
            'driver' => 'monolog',
            'handler' => NullHandler::class,
        ],
    ],
];
