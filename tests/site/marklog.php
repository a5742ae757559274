<?php
// Appends one line per request to the file named by the pool's MARK_LOG environment variable:
// "<marker> <method> <body length> <body SHA-1>". The hostile-client tests read it
// back to check that the worker saw exactly the requests the client meant, and never a request
// carved out of another request's body. The marker is the query parameter `m`.
$log = getenv('MARK_LOG');
if ($log === false) {
    http_response_code(500);
    exit("need MARK_LOG\n");
}
$body = file_get_contents('php://input');
$line = sprintf(
    "%s %s %d %s\n",
    $_GET['m'] ?? '-',
    $_SERVER['REQUEST_METHOD'],
    strlen($body),
    sha1($body)
);
file_put_contents($log, $line, FILE_APPEND | LOCK_EX);
header('Content-Type: text/plain');
echo "marked ", $_GET['m'] ?? '-', "\n";
