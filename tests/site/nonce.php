<?php
// Appends the POSTed nonce to the file named by the pool's NONCE_LOG environment variable: the
// fault tests check that no POST ever runs twice.
$log = getenv('NONCE_LOG');
if ($log === false || !isset($_POST['nonce'])) {
    http_response_code(400);
    exit("need NONCE_LOG and a nonce\n");
}
file_put_contents($log, $_POST['nonce'] . "\n", FILE_APPEND | LOCK_EX);
header('Content-Type: text/plain');
echo "stored ", $_POST['nonce'], "\n";
