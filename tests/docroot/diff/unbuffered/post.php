<?php
// ../post.php behind `fastcgi_request_buffering off`.
require dirname(__DIR__) . '/post.php';
