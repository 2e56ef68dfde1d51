<?php
// getallheaders() and its alias apache_request_headers(), in their order.
require __DIR__ . '/show.inc';
$all = getallheaders();
show('getallheaders()', $all);
show('same as apache_request_headers()', $all === apache_request_headers());
