<?php
// A main script that does not parse: a 500 with display_errors off.
echo "never"
echo "reached";
