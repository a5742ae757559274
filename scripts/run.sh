#!/usr/bin/env bash
# The run command: installs php-cgi when it is missing (Debian/Ubuntu, the same way as
# scripts/test.sh), then runs paddock. Without arguments it serves the embedded default: the demo
# site on http://127.0.0.1:8080 and https://127.0.0.1:8443, admin on http://127.0.0.1:9180.
# Arguments go to paddock (`./scripts/run.sh serve --config mysite.toml`).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/packages.sh
. scripts/lib/packages.sh

command -v php-cgi >/dev/null 2>&1 || install_packages php-cgi
exec cargo run --release -- "$@"
