<?php
// The demo's front page: links to the other examples.
$pages = [
    'hello.php' => 'Hello, world',
    'phpinfo.php' => 'phpinfo(): the engine, its SAPI (fpm-fcgi) and its settings',
    'form.php' => 'A form with a file upload, echoing what arrived',
    'fibers.php' => 'Fibers: cooperative tasks inside one request',
];
?>
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>tfpm demo</title>
</head>
<body>
<h1>tfpm demo</h1>
<p>PHP <?= htmlspecialchars(PHP_VERSION) ?> via <code><?= htmlspecialchars(PHP_SAPI) ?></code>
(thread-safe build: <?= PHP_ZTS ? 'yes' : 'no' ?>).</p>
<ul>
<?php foreach ($pages as $href => $label): ?>
  <li><a href="<?= htmlspecialchars($href) ?>"><?= htmlspecialchars($label) ?></a></li>
<?php endforeach; ?>
</ul>
</body>
</html>
