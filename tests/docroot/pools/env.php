<?php
// What a script sees of its pool's environment (env[...], clear_env).
echo json_encode([
    'getenv' => getenv('GREETING'),
    'server' => $_SERVER['GREETING'] ?? null,
    'home' => getenv('FROM_HOME'),
    'path' => getenv('PATH'),
    'override' => $_SERVER['SCRIPT_NAME'],
]), "\n";
