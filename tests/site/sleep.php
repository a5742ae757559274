<?php
// Sleeps ?ms milliseconds, then answers with its pid: for timeout, queue and concurrency tests.
usleep((int) ($_GET['ms'] ?? 0) * 1000);
header('Content-Type: text/plain');
echo "slept ", (int) ($_GET['ms'] ?? 0), " ms in pid ", getmypid(), "\n";
