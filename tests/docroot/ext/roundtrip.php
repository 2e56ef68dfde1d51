<?php
// Each PECL extension that is loaded, used the way an app uses it; one line
// per extension: its name and whether the data came back whole.
$data = ['id' => (int) ($_GET['n'] ?? 0), 'name' => str_repeat('é', 50), 'list' => range(1, 100), 'f' => 1.5];
$out = [];
if (extension_loaded('msgpack')) {
    $out[] = 'msgpack ' . (msgpack_unpack(msgpack_pack($data)) === $data ? 'ok' : 'bad');
}
if (extension_loaded('igbinary')) {
    $out[] = 'igbinary ' . (igbinary_unserialize(igbinary_serialize($data)) === $data ? 'ok' : 'bad');
}
if (extension_loaded('apcu')) {
    $key = 'k' . $data['id'];
    apcu_store($key, $data);
    $out[] = 'apcu ' . (apcu_fetch($key) === $data && apcu_inc('hits') !== false ? 'ok' : 'bad');
}
if (extension_loaded('redis')) {
    // redis-server on the Unix socket the test started it on. Under ZTS
    // phpredis makes pconnect a plain connect: each request opens its own
    // socket and closes it at the end, while other threads open and close
    // theirs (a descriptor closed twice anywhere in the process shows here).
    $redis = new Redis();
    $redis->pconnect($_GET['redis']);
    $key = 'k' . $data['id'];
    $redis->set($key, serialize($data));
    $same = unserialize($redis->get($key)) === $data && $redis->incr('hits') > 0;
    $out[] = 'redis ' . ($same ? 'ok' : 'bad');
}
if (extension_loaded('imagick')) {
    // A PNG made and read back; its size is the request's own.
    $width = 16 + $data['id'] % 8;
    $image = new Imagick();
    $image->newImage($width, 9, new ImagickPixel('red'));
    $image->setImageFormat('png');
    $back = new Imagick();
    $back->readImageBlob($image->getImageBlob());
    $same = $back->getImageWidth() === $width && $back->getImageHeight() === 9;
    $out[] = 'imagick ' . ($same ? 'ok' : 'bad');
}
if (extension_loaded('xdebug')) {
    // develop mode: the function stack; coverage mode: the lines run. The
    // thread runs the modes xdebug.mode names, and no others (no profiler).
    $modes = xdebug_info('mode');
    $want = array_map('trim', explode(',', ini_get('xdebug.mode')));
    sort($modes);
    sort($want);
    xdebug_start_code_coverage();
    $stack = (function () { return xdebug_get_function_stack(); })();
    $covered = xdebug_get_code_coverage();
    xdebug_stop_code_coverage();
    $same = $modes === $want && count($stack) >= 1 && isset($covered[__FILE__]);
    $out[] = 'xdebug ' . ($same ? 'ok' : 'bad');
}
echo implode("\n", $out), "\n";
