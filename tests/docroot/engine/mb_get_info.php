<?php
// mb_get_info() of a setting that came in a PHP_VALUE (php-src's
// ext/mbstring/tests/mb_get_info.phpt does the same).
$all = mb_get_info();
$one = mb_get_info('http_output_conv_mimetypes');
unset($all);
echo $one, ' ', ini_get('mbstring.http_output_conv_mimetypes'), "\n";
