<?php
// A real app page: a SQLite query with a join, rendered through a template.
$db = new PDO('sqlite:' . __DIR__ . '/app.db', null, null, [PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION]);
$stmt = $db->prepare(
    'SELECT p.id, p.title, p.body, a.name FROM posts p JOIN authors a ON a.id = p.author_id
     WHERE p.id > ? ORDER BY p.id DESC LIMIT 20'
);
$stmt->execute([(int) ($_GET['after'] ?? 0)]);
$posts = $stmt->fetchAll(PDO::FETCH_ASSOC);
ob_start();
?>
<!DOCTYPE html>
<html><head><title>Blog</title></head><body>
<?php foreach ($posts as $post): ?>
<article id="post-<?= (int) $post['id'] ?>">
  <h2><?= htmlspecialchars($post['title']) ?></h2>
  <p class="by">by <?= htmlspecialchars($post['name']) ?></p>
  <p><?= nl2br(htmlspecialchars(substr($post['body'], 0, 300))) ?></p>
</article>
<?php endforeach; ?>
</body></html>
<?php
echo ob_get_clean();
