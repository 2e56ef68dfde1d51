<?php
// Describes each uploaded file (with the md5 of what was stored) and the other form fields.
header('Content-Type: application/json');
$files = [];
foreach ($_FILES as $field => $file) {
    $ok = $file['error'] === UPLOAD_ERR_OK;
    $files[$field] = [
        'name' => $file['name'],
        'type' => $file['type'],
        'size' => $file['size'],
        'error' => $file['error'],
        'uploaded' => $ok && is_uploaded_file($file['tmp_name']),
        'stored' => $ok ? filesize($file['tmp_name']) : null,
        'md5' => $ok ? md5_file($file['tmp_name']) : null,
    ];
}
echo json_encode(['files' => $files, 'post' => $_POST], JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE);
