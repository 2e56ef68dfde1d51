<?php
// A chain of 30,000 nested objects, encoded to JSON: one C frame a level,
// more stack than a 512 KiB zend.max_allowed_stack_size allows.
$first = $node = new stdClass();
for ($i = 0; $i < 30000; $i++) {
    $node->next = new stdClass();
    $node = $node->next;
}
$json = json_encode($first, 0, 100000);
echo $json === false ? 'false' : strlen($json), ' ', ini_get('zend.max_allowed_stack_size'), "\n";
// Unlink the chain one level at a time: freeing it whole recurses as deep.
while ($next = $first->next ?? null) {
    $first->next = $next->next ?? null;
}
