<?php
// Waits 50 ms, like a call to a slow backend.
usleep(50000);
echo "slept\n";
