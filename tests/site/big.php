<?php
// Writes ?kb kibibytes of a repeating pattern as fast as it can: for response buffering tests.
header('Content-Type: application/octet-stream');
$line = str_repeat('0123456789abcdef', 64); // 1 KiB
$kb = (int) ($_GET['kb'] ?? 1);
for ($i = 0; $i < $kb; $i++) {
    echo $line;
}
