<?php
// Ends at once; its shutdown function then runs for 1.5 s, and says so
// if it gets to its end.
register_shutdown_function(function () {
    usleep(1500000);
    echo "shutdown done\n";
});
echo "script done\n";
