<?php
// Creates app.db for app.php (run once by bench/run.sh with the PHP CLI).
$path = $argv[1];
@unlink($path);
$db = new PDO('sqlite:' . $path);
$db->exec('CREATE TABLE authors (id INTEGER PRIMARY KEY, name TEXT)');
$db->exec('CREATE TABLE posts (id INTEGER PRIMARY KEY, author_id INTEGER, title TEXT, body TEXT)');
$db->beginTransaction();
for ($i = 1; $i <= 20; $i++) {
    $db->exec("INSERT INTO authors VALUES ($i, 'Author $i')");
}
$ins = $db->prepare('INSERT INTO posts VALUES (?, ?, ?, ?)');
for ($i = 1; $i <= 2000; $i++) {
    $ins->execute([$i, $i % 20 + 1, "Post number $i <draft>", str_repeat("Lorem ipsum dolor sit amet $i. ", 20)]);
}
$db->commit();
