<?php
// The demo site's front controller. Every path that matches no file comes here (paddock's
// try_files-style routing), the way Laravel, Symfony or WordPress sites are set up.
$path = parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH);

function page(string $title, string $body): void {
    echo "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">",
         "<title>", htmlspecialchars($title), " · paddock demo</title>",
         "<link rel=\"stylesheet\" href=\"/static/style.css\"></head><body>",
         "<header><img src=\"/static/paddock.svg\" alt=\"\" width=\"48\" height=\"48\">",
         "<h1>", htmlspecialchars($title), "</h1></header><main>", $body, "</main>",
         "<footer>Served by PHP ", PHP_VERSION, " (", PHP_SAPI, "), pid ", getmypid(),
         ", behind ", htmlspecialchars($_SERVER['SERVER_SOFTWARE'] ?? 'a web server'), ".</footer></body></html>\n";
}

if ($path === '/' || $path === '/index.php') {
    page('paddock demo', <<<HTML
<p>This page is PHP running in a prefork <code>php-cgi</code> worker. The stylesheet and the logo
are static files served by paddock's front end, which also holds every keep-alive connection, so a
slow client never ties up a PHP process.</p>
<ul>
  <li><a href="/info.php?greeting=hello&amp;list[]=1&amp;list[]=2">info.php</a> — what PHP sees of this request</li>
  <li><a href="/form.php">form.php</a> — a form that POSTs (with a file upload)</li>
  <li><a href="/hello/world">/hello/world</a> — a path that no file matches, handled by this front controller</li>
  <li><a href="/static/hello.txt">/static/hello.txt</a> — a plain static file</li>
</ul>
HTML);
} elseif (preg_match('#^/hello/([^/]+)$#', $path, $m)) {
    page('Hello', '<p>Hello, ' . htmlspecialchars(urldecode($m[1])) . '! No file is called <code>'
        . htmlspecialchars($path) . '</code>: the front controller answered.</p>');
} else {
    http_response_code(404);
    page('Not found', '<p>The front controller has no route for <code>' . htmlspecialchars($path) . '</code>.</p>');
}
