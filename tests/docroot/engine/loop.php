<?php
// Runs forever; set_time_limit(?t=) must end it with PHP's timeout error.
set_time_limit((int) ($_GET['t'] ?? 1));
while (true) {
}
