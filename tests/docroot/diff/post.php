<?php
// What the script gets of a request body: method and content headers,
// $_POST, $_FILES (temp names replaced by facts about them), and
// php://input (length, md5, the start, and whether a second read agrees).
require __DIR__ . '/show.inc';

/** $_FILES with each tmp_name replaced by what can be compared. */
function files_view(array $files): array
{
    foreach ($files as $key => $value) {
        if ($key === 'tmp_name') {
            $files[$key] = tmp_view($value);
        } elseif (is_array($value)) {
            $files[$key] = files_view($value);
        }
    }
    return $files;
}

function tmp_view($tmp)
{
    if (is_array($tmp)) {
        return array_map('tmp_view', $tmp);
    }
    if ($tmp === '') {
        return '';
    }
    return [
        'in upload_tmp_dir' => dirname($tmp) === ini_get('upload_tmp_dir'),
        'is_uploaded_file' => is_uploaded_file($tmp),
        'md5' => md5_file($tmp),
    ];
}

show('REQUEST_METHOD', $_SERVER['REQUEST_METHOD']);
show_server(['CONTENT_TYPE', 'CONTENT_LENGTH', 'HTTP_TRANSFER_ENCODING']);
show('$_POST', $_POST);
show('$_FILES', files_view($_FILES));
$input = file_get_contents('php://input');
show('php://input length', strlen($input));
show('php://input md5', md5($input));
show('php://input start', substr($input, 0, 60));
show('php://input read twice', file_get_contents('php://input') === $input);
