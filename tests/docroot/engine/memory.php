<?php
// Allocates until memory_limit stops it.
$blocks = [];
while (true) {
    $blocks[] = str_repeat('m', 1 << 20);
}
