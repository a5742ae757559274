#!/usr/bin/env bash
# Front-end CPU per request of two paddock binaries, alternated: the A/B behind several rows of
# docs/benchmarks.md' "Optimisations and their effect". Each round starts one binary on a
# static site (a 1 KiB file, loopback only), warms it for 2 s, loads it for 4 s with h2load and
# reads the CPU time of paddock's processes from /proc; then the other binary. CPU per request
# moves less with the machine's load than req/s does.
#   tests/bench/cpu-ab.sh BINARY_A BINARY_B [ROUNDS] [h2|h1|h2c]
# h2: HTTP/2 over TLS (default); h1: HTTP/1.1 plain (h2load --h1); h2c: HTTP/2 plain.
set -euo pipefail

a=${1:?usage: cpu-ab.sh BINARY_A BINARY_B [ROUNDS] [h2|h1|h2c]}
b=${2:?usage: cpu-ab.sh BINARY_A BINARY_B [ROUNDS] [h2|h1|h2c]}
rounds=${3:-5}
mode=${4:-h2}
for tool in h2load openssl curl; do
    command -v "$tool" >/dev/null || { echo "cpu-ab.sh: needs $tool" >&2; exit 2; }
done

dir=$(mktemp -d)
pid=""
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$dir"
}
trap cleanup EXIT
mkdir -p "$dir/site" "$dir/run"
head -c 1024 /dev/zero | tr '\0' 'x' >"$dir/site/file.txt"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=localhost \
    -keyout "$dir/key.pem" -out "$dir/cert.pem" 2>/dev/null
port=$((20000 + RANDOM % 20000))
admin=$((port + 1))
cat >"$dir/paddock.toml" <<EOF
[server]
runtime_dir = "$dir/run"
log_level = "warn"

[listeners.plain]
kind = "http"
address = "127.0.0.1:$port"
http2_prior_knowledge = true

[listeners.tls]
kind = "https"
address = "127.0.0.1:$((port + 2))"
certificate = "$dir/cert.pem"
key = "$dir/key.pem"

[listeners.admin]
kind = "admin"
address = "127.0.0.1:$admin"

# h2load does not reconnect after a GOAWAY.
[limits]
max_requests_per_connection = 1000000

[sites.bench]
root = "$dir/site"
EOF
case $mode in
    h2) url="https://127.0.0.1:$((port + 2))/file.txt"; extra=() ;;
    h1) url="http://127.0.0.1:$port/file.txt"; extra=(--h1) ;;
    h2c) url="http://127.0.0.1:$port/file.txt"; extra=() ;;
    *) echo "cpu-ab.sh: mode is h2, h1 or h2c" >&2; exit 2 ;;
esac

# utime + stime of paddock and its children (the front end is one), in clock ticks.
ticks() {
    local files=("/proc/$1/stat")
    for child in $(pgrep -P "$1"); do files+=("/proc/$child/stat"); done
    cat "${files[@]}" 2>/dev/null | awk '{s += $14 + $15} END {print s}'
}
hz=$(getconf CLK_TCK)

for _ in $(seq "$rounds"); do
    for bin in "$a" "$b"; do
        "$bin" serve --config "$dir/paddock.toml" 2>"$dir/log.txt" &
        pid=$!
        for _ in $(seq 200); do
            curl -fs -o /dev/null "http://127.0.0.1:$admin/readyz" && break
            sleep 0.1
        done
        timeout 10 h2load "${extra[@]}" -t1 -m1 -c64 -D 2 "$url" >/dev/null 2>&1 || true
        before=$(ticks "$pid")
        out=$(timeout 15 h2load "${extra[@]}" -t1 -m1 -c64 -D 4 "$url" 2>&1 || true)
        after=$(ticks "$pid")
        done_requests=$(awk '/^requests:/ {print $8}' <<<"$out")
        rps=$(awk '/^finished in/ {print $4}' <<<"$out")
        awk -v bin="$bin" -v rps="$rps" -v n="$done_requests" -v t=$((after - before)) -v hz="$hz" \
            'BEGIN {printf "%s: %s req/s, %.2f us of CPU per request\n", bin, rps, n ? t * 1e6 / hz / n : 0}'
        kill "$pid"
        wait "$pid" 2>/dev/null || true
        pid=""
    done
done
