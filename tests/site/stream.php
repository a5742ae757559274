<?php
// Sends ?chunks pieces of text, flushing each at once and pausing ?ms between them, then pauses
// ?tail_ms before ending: for unbuffered streaming and mid-stream failure tests.
header('Content-Type: text/plain');
while (ob_get_level() > 0) {
    ob_end_flush();
}
$chunks = (int) ($_GET['chunks'] ?? 3);
for ($i = 1; $i <= $chunks; $i++) {
    echo "chunk $i\n";
    flush();
    usleep((int) ($_GET['ms'] ?? 0) * 1000);
}
usleep((int) ($_GET['tail_ms'] ?? 0) * 1000);
echo "done\n";
