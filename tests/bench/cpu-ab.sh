#!/usr/bin/env bash
# Front-end CPU per request of two paddock binaries, alternated: the A/B behind several rows of
# docs/benchmarks.md' "Optimisations and their effect". Each round starts one binary on a
# static site (a 1 KiB file, loopback only), warms it for 2 s, loads it for 4 s with h2load and
# reads the CPU time of paddock's processes from /proc; then the other binary. CPU per request
# moves less with the machine's load than req/s does.
#   tests/bench/cpu-ab.sh BINARY_A BINARY_B [ROUNDS] [h2|h1|h2c|php|php-cgi|wsgi|wsgi-http]
# h2: HTTP/2 over TLS (default); h1: HTTP/1.1 plain (h2load --h1); h2c: HTTP/2 plain;
# php: hello.php over HTTP/1.1 on a static pool of 4 `builtin = "php"` workers (paddock-php must
# sit next to each binary), 8 connections, with the front end's and the workers' CPU apart;
# php-cgi: the same script on a static pool of 4 php-cgi workers, 32 connections;
# wsgi: deploy/examples/wsgi/hello.py's JSON endpoint on a threaded pool of 2 uWSGI processes ×
# 8 threads over the uwsgi protocol (needs uwsgi and Flask), 32 connections; wsgi-http: the same
# over HTTP/1.1 on kept connections (`protocol = "http"`, uWSGI's `--protocol http11`).
set -euo pipefail

a=${1:?usage: cpu-ab.sh BINARY_A BINARY_B [ROUNDS] [h2|h1|h2c|php|php-cgi|wsgi|wsgi-http]}
b=${2:?usage: cpu-ab.sh BINARY_A BINARY_B [ROUNDS] [h2|h1|h2c|php|php-cgi|wsgi|wsgi-http]}
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
echo '<?php echo "Hello, world\n";' >"$dir/site/hello.php"
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
if [ "$mode" = php ] || [ "$mode" = php-cgi ]; then
    builtin='builtin = "php"'
    [ "$mode" = php-cgi ] && builtin='command = ["php-cgi"]'
    cat >>"$dir/paddock.toml" <<EOF

[sites.bench.scripts]
pool = "php"

[pools.php]
mode = "prefork"
$builtin
sizing = "static"
workers = 4
EOF
fi
if [ "$mode" = wsgi ] || [ "$mode" = wsgi-http ]; then
    if [ "$mode" = wsgi ]; then
        protocol=uwsgi uwsgi_protocol=""
    else
        protocol=http uwsgi_protocol='"--protocol", "http11", "--socket-timeout", "3600",'
    fi
    cat >>"$dir/paddock.toml" <<EOF

[sites.bench.mounts.app]
prefix = "/"
pool = "flask"
static_first = true

[pools.flask]
mode = "threaded"
workers = 2
threads = 8
command = ["uwsgi", "--plugin", "python3", $uwsgi_protocol "--threads", "8",
    "--module", "hello:app", "--need-app", "--die-on-term", "--disable-logging"]
protocol = "$protocol"
working_directory = "$(cd "$(dirname "$0")/../../deploy/examples/wsgi" && pwd)"
EOF
fi
connections=64
case $mode in
    h2) url="https://127.0.0.1:$((port + 2))/file.txt"; extra=() ;;
    h1) url="http://127.0.0.1:$port/file.txt"; extra=(--h1) ;;
    h2c) url="http://127.0.0.1:$port/file.txt"; extra=() ;;
    php) url="http://127.0.0.1:$port/hello.php"; extra=(--h1); connections=8 ;;
    php-cgi) url="http://127.0.0.1:$port/hello.php"; extra=(--h1); connections=32 ;;
    wsgi | wsgi-http) url="http://127.0.0.1:$port/api/hello"; extra=(--h1); connections=32 ;;
    *) echo "cpu-ab.sh: mode is h2, h1, h2c, php, php-cgi, wsgi or wsgi-http" >&2; exit 2 ;;
esac

# utime + stime of the front end (the master's child that runs the same program), its utime
# alone (user space: moves less with the machine's noise than the kernel's share), and utime +
# stime of the whole process tree under paddock, in clock ticks.
tree() {
    echo "$1"
    for child in $(pgrep -P "$1"); do tree "$child"; done
}
ticks() {
    local front=0 front_user=0 all=0 stat comm rest utime stime master
    master=$(cat "/proc/$1/comm")
    for p in $(tree "$1"); do
        stat=$(cat "/proc/$p/stat" 2>/dev/null) || continue
        # The command name may hold spaces ("uWSGI worker 1"): fields are counted after it.
        comm=${stat#*(}
        comm=${comm%)*}
        rest=${stat##*) }
        read -r utime stime <<<"$(awk '{print $12, $13}' <<<"$rest")"
        all=$((all + utime + stime))
        if [ "$p" != "$1" ] && [ "$comm" = "$master" ]; then
            front=$((front + utime + stime))
            front_user=$((front_user + utime))
        fi
    done
    echo "$front $front_user $all"
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
        if ! curl -fs -o /dev/null "http://127.0.0.1:$admin/readyz"; then
            echo "cpu-ab.sh: $bin did not become ready:" >&2
            cat "$dir/log.txt" >&2
            exit 1
        fi
        timeout 10 h2load "${extra[@]}" -t1 -m1 -c$connections -D 2 "$url" >/dev/null 2>&1 || true
        read -r front_before user_before all_before <<<"$(ticks "$pid")"
        out=$(timeout 15 h2load "${extra[@]}" -t1 -m1 -c$connections -D 4 "$url" 2>&1 || true)
        read -r front_after user_after all_after <<<"$(ticks "$pid")"
        done_requests=$(awk '/^requests:/ {print $8}' <<<"$out")
        rps=$(awk '/^finished in/ {print $4}' <<<"$out")
        if [ "${done_requests:-0}" -eq 0 ]; then
            echo "cpu-ab.sh: no request succeeded against $bin:" >&2
            grep -E '^(requests|status codes):' <<<"$out" >&2 || true
        fi
        awk -v bin="$bin" -v rps="$rps" -v n="$done_requests" -v hz="$hz" \
            -v front=$((front_after - front_before)) -v user=$((user_after - user_before)) \
            -v all=$((all_after - all_before)) \
            'BEGIN {us = n ? 1e6 / hz / n : 0
                printf "%s: %s req/s, CPU per request: front end %.2f us (user %.2f), all of paddock %.2f us\n",
                    bin, rps, front * us, user * us, all * us}'
        kill "$pid"
        wait "$pid" 2>/dev/null || true
        pid=""
    done
done
