<?php
// Marks that it started (a file in ?dir=), then sleeps ?ms= milliseconds.
touch($_GET['dir'] . '/' . uniqid('', true));
usleep((int) $_GET['ms'] * 1000);
echo "done\n";
