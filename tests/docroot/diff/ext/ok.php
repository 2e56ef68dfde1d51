<?php
// Reached through the location without try_files.
echo "ran ext/ok.php\n";
