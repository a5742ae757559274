<?php
// Answers at once with fastcgi_finish_request() (php-fpm's function, which builtin = "php" has
// too), then waits until ?release exists (at most 60 s) and writes ?mark: shows that the client
// had its whole answer while the script went on. Both paths must end in .release and .mark.
$release = (string) ($_GET['release'] ?? '');
$mark = (string) ($_GET['mark'] ?? '');
if (substr($release, -8) !== '.release' || substr($mark, -5) !== '.mark') {
    http_response_code(400);
    exit;
}
header('Content-Type: text/plain');
echo "answered\n";
$finished = fastcgi_finish_request();
echo "discarded\n";
for ($waited = 0; $waited < 60000 && !file_exists($release); $waited += 10) {
    usleep(10000);
    clearstatcache();
}
file_put_contents($mark, $finished ? "ran on" : "finish failed");
