<?php
// Answers `kb` KiB of text (default 1024): a response large enough to fill flow-control windows
// and socket buffers in the slow-reader tests.
header('Content-Type: text/plain');
$kb = max(1, min(65536, (int)($_GET['kb'] ?? 1024)));
$line = str_repeat('x', 1023) . "\n";
for ($i = 0; $i < $kb; $i++) {
    echo $line;
}
