<?php
// Included by slowlog.php, which the slowlog tests run.
function nap($times)
{
    for ($i = 0; $i < $times; $i++) {
        usleep(100000);
    }
}

class Napper
{
    public function run()
    {
        nap(20);
    }

    public static function start()
    {
        (new Napper())->run();
    }
}

Napper::start();
