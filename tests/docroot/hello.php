<?php
// The smallest response: a fixed line of text.
echo "Hello, world!\n";
