#!/usr/bin/env bash
# What a proxied request costs the front end alone: paddock (one or two builds of it) and nginx,
# each in front of the same upstream, an nginx that answers `return 200` with a small JSON body
# over a Unix socket, on kept HTTP/1.1 connections (paddock: an external pool with
# `protocol = "http"` and `keep_connections`; nginx: `proxy_pass` with upstream `keepalive`).
# The front end runs alone on CPU 0, the upstream and wrk on CPU 1, so the front end is the
# bottleneck: its req/s and CPU time a request (perf's task-clock) are its own cost, to about
# 1-2 % from round to round, where a whole stack of Python workers on a shared machine swings
# by 5-15 % (docs/benchmarks.md, "What a proxied request costs the front end"). Unlike
# cpu-ab.sh (two paddock builds on a real workload, sharing the cores with it), the upstream costs
# next to nothing and nginx runs the same measurement beside paddock.
#
#   tests/bench/proxy-cost.sh PADDOCK [OTHER_PADDOCK] [ROUNDS]
#
# Needs nginx, wrk, perf (linux-perf) and taskset, two or more CPUs, loopback ports 18300-18321.
set -euo pipefail
for tool in nginx wrk perf taskset curl; do
    command -v "$tool" > /dev/null || {
        echo "proxy-cost.sh: needs $tool (apt-get install -y nginx wrk linux-perf util-linux curl)" >&2
        exit 2
    }
done
[ "$(nproc)" -ge 2 ] || { echo "proxy-cost.sh: needs two CPUs" >&2; exit 2; }
paddock=$(realpath "${1:?usage: proxy-cost.sh PADDOCK [OTHER_PADDOCK] [ROUNDS]}")
other=${2:+$(realpath "$2")}
rounds=${3:-4}
seconds=5
path=/api/items/7
work=$(mktemp -d)
stop() {
    for pidfile in "$work"/*.pid; do [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true; done
    sleep 0.5
    rm -rf "$work"
}
trap stop EXIT

nginx_conf() { # name listen body
    cat > "$work/$1.conf" <<EOF
worker_processes 1;
$( [ "$(id -u)" = 0 ] && echo "user root;" )
pid $work/$1.pid;
error_log $work/$1-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work/$1-body;
  proxy_temp_path $work/$1-proxy;
  keepalive_requests 10000000;
  keepalive_timeout 3600s;
  $3
  server {
    listen $2;
    default_type application/json;
    location / { $4 }
  }
}
EOF
}

nginx_conf upstream "unix:$work/upstream.sock" "" \
    "return 200 '{\"id\":7,\"name\":\"item 7\",\"pid\":1,\"served\":1,\"thread\":1}\n';"
taskset -c 1 nginx -c "$work/upstream.conf"
nginx_conf front 127.0.0.1:18320 "upstream up { server unix:$work/upstream.sock; keepalive 32; }" \
    'proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_set_header Host $host;'
taskset -c 0 nginx -c "$work/front.conf"
mkdir -p "$work/public"

# paddock NAME PORT BINARY: starts it on CPU 0 (one event loop), prints its front end's pid.
start_paddock() {
    cat > "$work/$1.toml" <<EOF
[server]
runtime_dir = "$work/run-$1"
log_level = "warn"
shutdown_timeout = "2s"

[listeners.http]
kind = "http"
address = "127.0.0.1:$2"

[listeners.admin]
kind = "admin"
address = "127.0.0.1:$(($2 + 1))"

[limits]
max_requests_per_connection = 1000000

[sites.bench]
root = "$work/public"

[sites.bench.mounts.app]
prefix = "/"
pool = "upstream"

[pools.upstream]
mode = "external"
socket = "$work/upstream.sock"
protocol = "http"
keep_connections = true
connections = 32
EOF
    taskset -c 0 "$3" serve --config "$work/$1.toml" > "$work/$1.log" 2>&1 &
    local master=$!
    # A pid file, not a variable: this runs in a command substitution's subshell.
    echo "$master" > "$work/$1.pid"
    for _ in $(seq 100); do
        curl -sf -o /dev/null "http://127.0.0.1:$2$path" && break
        sleep 0.1
    done
    pgrep -P "$master" -f " frontend "
}

# Each front end: name, port, pid whose CPU time counts.
names=(paddock)
ports=(18300)
fronts=("$(start_paddock paddock 18300 "$paddock")")
if [ -n "$other" ]; then
    names+=(other)
    ports+=(18310)
    fronts+=("$(start_paddock other 18310 "$other")")
fi
names+=(nginx)
ports+=(18320)
fronts+=("$(pgrep -P "$(cat "$work/front.pid")")")

measure() { # port pid -> "req/s µs"
    perf stat -x, -e task-clock -p "$2" -o "$work/clock" -- sleep $((seconds + 1)) &
    local perf_pid=$!
    sleep 0.5
    local out
    out=$(taskset -c 1 wrk -t1 -c32 -d${seconds}s "http://127.0.0.1:$1$path")
    wait "$perf_pid"
    local requests ms
    requests=$(echo "$out" | awk '/requests in/ {print $1}')
    ms=$(grep task-clock "$work/clock" | cut -d, -f1)
    echo "$(echo "$out" | awk '/Requests\/sec/ {printf "%.0f", $2}') $(awk -v ms="$ms" -v n="$requests" 'BEGIN {printf "%.2f", ms * 1000 / n}')"
}

for i in "${!names[@]}"; do
    taskset -c 1 wrk -t1 -c32 -d2s "http://127.0.0.1:${ports[$i]}$path" > /dev/null
done
echo "front end alone on CPU 0; req/s and µs of its CPU a request, ${seconds} s a run"
printf '%-6s' round
for name in "${names[@]}"; do printf ' %-18s' "$name"; done
echo
for round in $(seq "$rounds"); do
    printf '%-6s' "$round"
    for i in "${!names[@]}"; do
        # Rotated, so that no front end always runs first.
        j=$(( (i + round) % ${#names[@]} ))
        results[$j]=$(measure "${ports[$j]}" "${fronts[$j]}")
    done
    for i in "${!names[@]}"; do
        read -r rps us <<< "${results[$i]}"
        printf ' %-18s' "$rps ${us}µs"
    done
    echo
done
