<?php
highlight_string("<?php echo 1; ?>", true);
echo "highlighted\n";
