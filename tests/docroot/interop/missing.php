<?php
// Answers 404 from the script itself, with a body the test checks.
http_response_code(404);
echo "no such thing: " . ($_GET['what'] ?? '');
