<?php
// Creates each class named in ?c= (comma-separated), and Items, a class of
// this file that extends ArrayObject, and says what each turned out to be.
class Items extends ArrayObject {}

set_error_handler(function (int $level, string $message): bool {
    echo "warning: $message\n";
    return true;
});
foreach (array_filter(explode(',', $_GET['c'] ?? '')) as $name) {
    $object = new $name();
    echo $name, ': ', get_class_methods($object) ? 'methods' : 'no methods', "\n";
}
$items = new Items();
echo 'Items: ', $items instanceof Countable ? 'countable' : 'not countable', "\n";
// Not ini_get('disable_classes'): opcache would compile in the value it had
// when the script was compiled (for every setting only php.ini may change).
echo 'disable_classes: ', ini_get_all(null, false)['disable_classes'], "\n";
