<?php
// A custom header and a non-200 status with a body.
header('X-Tfpm-Test: yes');
http_response_code(404);
echo "nope";
