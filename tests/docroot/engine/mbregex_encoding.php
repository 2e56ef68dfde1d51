<?php
// An encoding that Oniguruma knows and mbstring's own tables (mbfl) do not
// (php-src's GHSA-wm6j-2649-pv75 test does the same).
try {
    mb_regex_encoding('iso-8859-11');
    mb_ereg_search_init('x');
    echo "accepted\n";
} catch (ValueError $e) {
    echo get_class($e), ': ', $e->getMessage(), "\n";
}
