<?php
// Prints one ini setting (?name=).
echo ini_get($_GET['name'] ?? '');
