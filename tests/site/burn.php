<?php
// Spends ?ms= milliseconds of CPU time (by the process's own clock, so a busy machine only
// stretches it) while holding ?mib= MiB at once: what the builtin worker's usage figures measure.
$ms = (int)($_GET['ms'] ?? 100);
$hold = str_repeat('x', ((int)($_GET['mib'] ?? 0)) << 20);
function cpu_ms() {
    $u = getrusage();
    return ($u['ru_utime.tv_sec'] + $u['ru_stime.tv_sec']) * 1000
        + intdiv($u['ru_utime.tv_usec'] + $u['ru_stime.tv_usec'], 1000);
}
$end = cpu_ms() + $ms;
$n = 0;
while (cpu_ms() < $end) {
    $n++;
}
echo strlen($hold), " bytes held, ", $n, " rounds\n";
