<?php
// Prints what follows __halt_compiler(), read from the offset that PHP
// computed while it compiled this file.
echo file_get_contents(__FILE__, false, null, __COMPILER_HALT_OFFSET__);
__halt_compiler();after the halt
