<?php
// Holds its worker until the file named by ?until (it must end in .release) exists, or its
// directory is gone, then answers with its pid: lets a test occupy a worker for exactly as long as
// it needs, on a machine of any speed (harness::Hold). Gives up after ?max_ms (default 120 s).
$file = (string) ($_GET['until'] ?? '');
if (substr($file, -8) !== '.release') {
    http_response_code(400);
    exit;
}
$deadline = microtime(true) + (int) ($_GET['max_ms'] ?? 120000) / 1000;
while (!file_exists($file) && is_dir(dirname($file)) && microtime(true) < $deadline) {
    usleep(10000);
    clearstatcache();
}
header('Content-Type: text/plain');
echo microtime(true) < $deadline ? "released" : "gave up", " in pid ", getmypid(), "\n";
