<?php
// frankenphp_handle_request() outside worker mode: a RuntimeException.
try {
    frankenphp_handle_request(fn () => null);
    echo 'no exception';
} catch (RuntimeException $e) {
    echo $e->getMessage();
}
