<?php
// A heavier page: some computation and templating, about 10 KiB of HTML. Deterministic, so every
// server does exactly the same work.
$rows = [];
for ($i = 1; $i <= 112; $i++) {
    $sum = 0.0;
    for ($k = 1; $k <= 120; $k++) {
        $sum += sqrt($i * $k) / $k;
    }
    $rows[] = [
        'id' => $i,
        'name' => str_repeat(chr(97 + $i % 26), 1 + $i % 7) . " item <$i>",
        'hash' => substr(sha1("row-$i"), 0, 16),
        'score' => $sum,
    ];
}
usort($rows, fn ($a, $b) => $b['score'] <=> $a['score']);
header('Content-Type: text/html; charset=utf-8');
echo "<!doctype html>\n<title>report</title>\n<table>\n";
foreach ($rows as $row) {
    printf(
        "<tr><td>%d</td><td>%s</td><td>%s</td><td>%s</td></tr>\n",
        $row['id'],
        htmlspecialchars($row['name']),
        $row['hash'],
        number_format($row['score'], 3)
    );
}
echo "</table>\n";
