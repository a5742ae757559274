<?php
// Sends ?chunks pieces of text, flushing each at once and pausing ?ms between them, then pauses
// ?tail_ms before ending: for unbuffered streaming and mid-stream failure tests. With ?release=PATH
// it then waits (at most 60 s) until that file exists, so that a test decides when it ends.
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
$release = (string) ($_GET['release'] ?? '');
for ($waited = 0; $release !== '' && $waited < 60000; $waited += 20) {
    clearstatcache();
    if (file_exists($release)) {
        break;
    }
    usleep(20000);
}
echo "done\n";
