<?php
// The working directory is the script's, per request, so relative includes work.
echo json_encode(['cwd' => getcwd(), 'included' => include './sub/value.php']);
