<?php
// Sleeps ?ms milliseconds. Answers "pid start end" (start and end in microseconds since the epoch),
// so the benchmark can tell exactly when and where each request ran.
$start = microtime(true);
usleep((int) ($_GET['ms'] ?? 0) * 1000);
header('Content-Type: text/plain');
printf("%d %d %d\n", getmypid(), (int) ($start * 1e6), (int) (microtime(true) * 1e6));
