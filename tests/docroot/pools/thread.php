<?php
// The Linux task id of the PHP thread that runs this request.
echo basename(readlink('/proc/thread-self')), "\n";
