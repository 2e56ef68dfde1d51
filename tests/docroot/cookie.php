<?php
// Echoes the parsed Cookie header.
header('Content-Type: application/json');
echo json_encode($_COOKIE, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE);
