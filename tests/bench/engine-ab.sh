#!/usr/bin/env bash
# The PHP engine in Debian's libphp8.2.so (what `builtin = "php"` workers ran in until 2026-12-06,
# when they moved into php-cgi's executable for the difference this measures) against the same
# engine in the php executable: heavy.php's work run N times in one process by each, alternated,
# CPU time per page. No paddock, no php.ini, no OPcache: only the build of the engine differs.
# Needs gcc, php8.2-dev, libphp8.2-embed and php-cli.
#
#   tests/bench/engine-ab.sh [ROUNDS] [PAGES]
set -euo pipefail
rounds=${1:-5}
pages=${2:-1500}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

gcc -O2 -o "$work/embed" "$here/engine/embed.c" $(php-config8.2 --includes) -lphp8.2
echo "µs of CPU per heavy.php page, $pages pages a round"
printf '%-6s %-10s %-10s %s\n' round libphp php libphp/php
for round in $(seq "$rounds"); do
    embedded=$("$work/embed" "$here/engine/loop.php" "$pages" 2>&1 >/dev/null | awk '{print $2}')
    executable=$(php -n "$here/engine/loop.php" "$pages" 2>&1 >/dev/null | awk '{print $2}')
    ratio=$(awk -v a="$embedded" -v b="$executable" 'BEGIN {printf "%.2f", a / b}')
    printf '%-6s %-10s %-10s %s\n' "$round" "$embedded" "$executable" "$ratio"
done
