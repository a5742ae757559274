<?php
// heavy.php's work, N times in one process, and the CPU time it took per page (µs) on stderr.
// The same file runs under the php executable and under libphp's embed SAPI (engine-ab.sh), so
// the only difference between the two figures is how the engine was built and linked.
$n = (int) ($argv[1] ?? 1000);
$code = substr(file_get_contents(__DIR__ . '/../site/heavy.php'), strlen('<?php'));
$page = eval("return function () { $code };");

function cpu_us(): float
{
    $r = getrusage();
    return ($r['ru_utime.tv_sec'] + $r['ru_stime.tv_sec']) * 1e6
        + $r['ru_utime.tv_usec'] + $r['ru_stime.tv_usec'];
}

ob_start();
$page(); // compiled and warm before the clock starts
ob_end_clean();
$start = cpu_us();
for ($i = 0; $i < $n; $i++) {
    ob_start();
    $page();
    ob_end_clean();
}
$per_page = (cpu_us() - $start) / $n;
// The embed SAPI defines no STDERR constant.
fprintf(fopen('php://stderr', 'w'), "%s %.1f\n", PHP_SAPI, $per_page);
