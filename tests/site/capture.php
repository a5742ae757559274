<?php
// For the differential test (tests/tests/site/cgi_differential.rs): what PHP sees of the request, as
// JSON. Besides the body, it is written to CAPTURE_DIR/<X-Capture-Token>.json when the worker has
// CAPTURE_DIR in its environment, so that HEAD requests (whose body the server drops) compare too.
$files = [];
foreach ($_FILES as $field => $file) {
    $file['sha1'] = is_string($file['tmp_name']) && $file['error'] === 0
        ? sha1_file($file['tmp_name']) : null;
    unset($file['tmp_name']);
    $files[$field] = $file;
}
$seen = json_encode([
    'server' => $_SERVER,
    'get' => $_GET,
    'post' => $_POST,
    'cookie' => $_COOKIE,
    'files' => $files,
    'input_sha1' => sha1(file_get_contents('php://input')),
], JSON_UNESCAPED_SLASHES | JSON_INVALID_UTF8_SUBSTITUTE);
$token = $_SERVER['HTTP_X_CAPTURE_TOKEN'] ?? '';
$dir = getenv('CAPTURE_DIR');
if (is_string($dir) && $dir !== '' && preg_match('/^[a-z0-9-]{1,64}$/', $token)) {
    file_put_contents("$dir/$token.json", $seen);
}
header('Content-Type: application/json');
echo $seen;
