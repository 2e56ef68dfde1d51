<?php
// A 50 KiB HTML page from a small template loop, as a CMS page would be.
$rows = '';
for ($i = 0; $i < 400; $i++) {
    $rows .= '<tr><td>' . $i . '</td><td>' . htmlspecialchars("Item <$i> & more") . '</td><td>' . number_format($i * 3.14159, 2) . "</td></tr>\n";
}
echo "<!DOCTYPE html>\n<html><head><title>Page</title></head><body><table>\n", $rows, "</table></body></html>\n";
