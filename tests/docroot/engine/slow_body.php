<?php
// The body arrives slowly; max_input_time must end the request.
echo "got ", strlen(file_get_contents('php://input')), " bytes\n";
