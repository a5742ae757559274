#!/usr/bin/env bash
# Runs the benchmark: paddock side by side with nginx + php-fpm, nginx + php-cgi and Apache.
#   tests/bench/run.sh [--quick] [--runs N] [--duration S] [--out DIR] [scenario…]
# Scenarios: static large php keepalive memory burst step kills rules builtin builtin-app wsgi (or 1-9, 8b); default: all.
# builtin-burst and wsgi-burst run only the cold burst of builtin or of wsgi.
# Builds paddock and the benchmark in release mode, installs missing peers from Debian packages,
# raises the open-file limit, and leaves the results in target/bench/<timestamp>/ (see
# docs/benchmarks.md). Every process it starts is stopped by pid before it exits.
set -euo pipefail
cd "$(dirname "$0")/../.."

need=()
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }
have nginx || need+=(nginx)
have php-cgi || need+=(php-cgi)
ls /usr/sbin/php-fpm* >/dev/null 2>&1 || need+=(php-fpm)
have apache2 || need+=(apache2)
[ -e /usr/lib/apache2/modules/libphp8.2.so ] || ls /usr/lib/apache2/modules/libphp*.so >/dev/null 2>&1 || need+=(libapache2-mod-php)
have wrk || need+=(wrk)
have h2load || need+=(nghttp2-client)
have openssl || need+=(openssl)
# Scenario 9 (wsgi): Debian's Flask for every stack, python3-venv for paddock's flup venv (made
# by the benchmark under the target dir, as the tests make it), gunicorn and uWSGI as the peers.
# shellcheck source=scripts/lib/packages.sh
. scripts/lib/packages.sh
mapfile -t python_need < <(python_app_packages; wsgi_peer_packages)
need+=("${python_need[@]}")
if [ ${#need[@]} -gt 0 ]; then
    echo "run.sh: installing ${need[*]}" >&2
    sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    # Debian starts services on install unless policy-rc.d says no; the benchmark starts its
    # own instances, so keep the packaged ones from starting.
    RUNLEVEL=1 DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}"
fi

cargo build --release -p paddock -p paddock-php -p paddock-wsgi -p paddock-tests --bin paddock --lib --bin paddock-wsgi --bin bench
target_dir="${CARGO_TARGET_DIR:-target}"

# 10,000 held connections plus the load need more descriptors than the usual 1024.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

exec "$target_dir/release/bench" "$@"
