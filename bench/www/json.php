<?php
// A small JSON API with some computation: sort, hash, aggregate, encode.
header('Content-Type: application/json');
mt_srand(42);
$items = [];
for ($i = 0; $i < 200; $i++) {
    $items[] = ['id' => $i, 'score' => mt_rand(0, 100000), 'tag' => md5((string) $i)];
}
usort($items, fn ($a, $b) => $b['score'] <=> $a['score']);
$total = array_sum(array_column($items, 'score'));
echo json_encode(['total' => $total, 'top' => array_slice($items, 0, 20)]);
