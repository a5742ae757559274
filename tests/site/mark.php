<?php
// Creates the file named by ?file (it must end in .mark): lets a test see whether a request ever
// reached a worker.
$file = (string) ($_GET['file'] ?? '');
if (substr($file, -5) !== '.mark') {
    http_response_code(400);
    exit;
}
file_put_contents($file, getmypid());
echo "marked\n";
