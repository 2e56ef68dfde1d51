<?php
// A POST form with a file upload. Shows what PHP received, escaping everything it prints.
function h(string $text): string
{
    return htmlspecialchars($text, ENT_QUOTES | ENT_SUBSTITUTE, 'UTF-8');
}

$posted = $_SERVER['REQUEST_METHOD'] === 'POST';
$name = is_string($_POST['name'] ?? null) ? $_POST['name'] : '';
$message = is_string($_POST['message'] ?? null) ? $_POST['message'] : '';
$file = $_FILES['attachment'] ?? null;
?>
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>tfpm demo: form</title>
</head>
<body>
<h1>Form and upload</h1>
<form method="post" enctype="multipart/form-data">
  <p><label>Name <input name="name" value="<?= h($name) ?>"></label></p>
  <p><label>Message<br><textarea name="message" rows="4" cols="40"><?= h($message) ?></textarea></label></p>
  <p><label>File <input type="file" name="attachment"></label></p>
  <p><button type="submit">Send</button></p>
</form>

<?php if ($posted): ?>
<h2>Received</h2>
<dl>
  <dt>Name</dt><dd><?= h($name) ?></dd>
  <dt>Message</dt><dd><pre><?= h($message) ?></pre></dd>
</dl>
<?php if (is_array($file) && is_int($file['error'] ?? null) && $file['error'] !== UPLOAD_ERR_NO_FILE): ?>
<h3>File</h3>
<?php if ($file['error'] === UPLOAD_ERR_OK && is_uploaded_file($file['tmp_name'])): ?>
<dl>
  <dt>Name</dt><dd><?= h($file['name']) ?></dd>
  <dt>Type (as sent by the browser)</dt><dd><?= h($file['type']) ?></dd>
  <dt>Size</dt><dd><?= (int) $file['size'] ?> bytes</dd>
  <dt>SHA-256</dt><dd><code><?= h(hash_file('sha256', $file['tmp_name'])) ?></code></dd>
</dl>
<?php else: ?>
<p>Upload failed with error code <?= (int) $file['error'] ?>
(<code>upload_max_filesize</code> is <?= h((string) ini_get('upload_max_filesize')) ?>).</p>
<?php endif; ?>
<?php endif; ?>
<?php endif; ?>
<p><a href="index.php">Back</a></p>
</body>
</html>
