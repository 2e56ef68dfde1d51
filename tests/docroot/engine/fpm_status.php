<?php
// fpm_get_status(), as JSON.
echo json_encode(fpm_get_status());
