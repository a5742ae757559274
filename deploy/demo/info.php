<?php
// Shows what PHP sees of the request. With ?format=json it answers the superglobals as JSON,
// which the end-to-end tests read.
if (($_GET['format'] ?? '') === 'json') {
    header('Content-Type: application/json');
    echo json_encode([
        'server' => $_SERVER,
        'get' => $_GET,
        'post' => $_POST,
        'cookie' => $_COOKIE,
        'files' => $_FILES,
        'pid' => getmypid(),
    ], JSON_PRETTY_PRINT | JSON_UNESCAPED_SLASHES);
    exit;
}
setcookie('demo_visits', (string) (((int) ($_COOKIE['demo_visits'] ?? 0)) + 1));
$keys = ['REQUEST_METHOD', 'REQUEST_URI', 'SCRIPT_NAME', 'SCRIPT_FILENAME', 'PATH_INFO', 'QUERY_STRING',
         'HTTP_HOST', 'HTTPS', 'SERVER_PROTOCOL', 'REMOTE_ADDR', 'REMOTE_PORT', 'SERVER_ADDR', 'SERVER_PORT',
         'SERVER_SOFTWARE', 'PADDOCK_REQUEST_ID'];
?><!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>info.php · paddock demo</title>
<link rel="stylesheet" href="/static/style.css"></head><body>
<header><img src="/static/paddock.svg" alt="" width="48" height="48"><h1>What PHP sees</h1></header>
<main>
<table>
<?php foreach ($keys as $key): ?>
<tr><th><?= htmlspecialchars($key) ?></th><td><code><?= htmlspecialchars((string) ($_SERVER[$key] ?? '')) ?></code></td></tr>
<?php endforeach; ?>
</table>
<h2>$_GET</h2><pre><?= htmlspecialchars(print_r($_GET, true)) ?></pre>
<h2>$_COOKIE</h2><pre><?= htmlspecialchars(print_r($_COOKIE, true)) ?></pre>
<p>Reload: the <code>demo_visits</code> cookie counts your visits. <a href="/">Back</a></p>
</main></body></html>
