<?php
// One setting (?d=), changed by the script as ?how= says (ini_set, the
// setting's own function, ini_restore, or not at all), inside a Fiber when
// ?fiber=1: what ini_get(), the setting's own getter and ini_get_all() say
// before, after the change and after ini_restore(). tests/ini_overrides.rs
// sends it with each kind of override (PHP_VALUE, PHP_ADMIN_VALUE,
// .user.ini, a pool's php_value and php_admin_value).
$d = $_GET['d'] ?? 'error_reporting';
$how = $_GET['how'] ?? 'none';
$settings = [
    'error_reporting' => [fn () => error_reporting(E_ALL & ~E_NOTICE), fn () => error_reporting(), (string) (E_ALL & ~E_NOTICE)],
    'include_path' => [fn () => set_include_path('/tmp/tfpm-set'), fn () => get_include_path(), '/tmp/tfpm-set'],
    'date.timezone' => [fn () => date_default_timezone_set('Asia/Tokyo'), fn () => date_default_timezone_get(), 'Asia/Tokyo'],
    'max_execution_time' => [fn () => set_time_limit(17), fn () => (int) ini_get('max_execution_time'), '17'],
];
[$change, $getter, $value] = $settings[$d];
$show = function (string $when) use ($d, $getter) {
    $all = ini_get_all(null, true)[$d];
    echo $when, ': ini_get=', var_export(ini_get($d), true), ' getter=', var_export($getter(), true),
        ' global=', var_export($all['global_value'], true), ' access=', $all['access'], "\n";
};
$run = function () use ($d, $how, $change, $value, $show) {
    $show('before');
    switch ($how) {
        case 'ini_set':
            echo 'ini_set: ', var_export(ini_set($d, $value), true), "\n";
            break;
        case 'func':
            echo 'function: ', var_export($change(), true), "\n";
            break;
        case 'ini_restore':
            ini_set($d, $value);
            $show('set');
            ini_restore($d);
            break;
    }
    $show('after');
    echo 'ini_restore: ', var_export(ini_restore($d), true), "\n";
    $show('restored');
};
if (!empty($_GET['fiber'])) {
    $fiber = new Fiber(function () use ($run) {
        $run();
        Fiber::suspend();
        $run();
    });
    $fiber->start();
    echo "-- resumed\n";
    $fiber->resume();
} else {
    $run();
}
echo "ok\n";
