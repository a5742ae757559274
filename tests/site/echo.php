<?php
// Answers what PHP sees of the request as JSON; the end-to-end tests compare it with what they sent.
header('Content-Type: application/json');
$files = [];
foreach ($_FILES as $field => $file) {
    $file['sha1'] = $file['error'] === 0 ? sha1_file($file['tmp_name']) : null;
    unset($file['tmp_name'], $file['full_path']);
    $files[$field] = $file;
}
echo json_encode([
    'server' => $_SERVER,
    'get' => $_GET,
    'post' => $_POST,
    'cookie' => $_COOKIE,
    'files' => $files,
    'input_sha1' => sha1(file_get_contents('php://input')),
    'pid' => getmypid(),
], JSON_UNESCAPED_SLASHES);
