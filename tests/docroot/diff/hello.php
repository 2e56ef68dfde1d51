<?php
// The smallest response; also the script whose opcache hits opcache.php counts.
echo "Hello, world!\n";
