#!/usr/bin/env bash
# The test command: installs what the test suite needs when it is missing (Debian packages), builds
# the paddock binary that the end-to-end tests start, and runs every test in the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/packages.sh
. scripts/lib/packages.sh

# Debian packages the suite uses: php-cgi (the real worker), curl (the real HTTP/1.1 and HTTP/2
# client), procps (ps, for process checks), the real FastCGI peers: libfcgi-bin (cgi-fcgi),
# nginx, php-fpm; nghttp2-client (h2load and nghttp, HTTP/2 tests), openssl (s_client and
# certificate generation for the TLS tests), prometheus (promtool and the server, for the metrics
# tests), chromium (renders the status page headless), python3-h2 (hpack and hyperframe for the
# frame-level HTTP/2 client of the hostile-client tests), slowhttptest (slow-client attacks);
# for the real-application tests (tests/tests/legacy): mariadb-server (each test starts its
# own server under a temp dir, never the system service), php-mysql, and the packaged
# applications themselves (wordpress and a theme for it, mediawiki with php-sqlite3 for its
# database, php-cli for its installer and imagemagick for its thumbnails, phpmyadmin); apache2,
# libapache2-mod-php and apache2-utils (htpasswd) for the .htaccess differential test
# (tests/tests/legacy/htaccess_differential.rs, which starts its own Apache under a temp dir, never the
# system service); php8.2-dev for paddock's own PHP worker (`builtin = "php"`, the php-worker
# crate, which builds as a stub without PHP's headers; it runs in php-cgi's engine); python3-flask, python3-django and
# python3-venv for the Python application tests
# (tests/tests/apps), libpython3.11-dev for paddock's own WSGI worker (wsgi-worker/, which links it), gunicorn and uwsgi for the benchmark's WSGI peers; pebble (Let's Encrypt's
# test CA, with pebble-challtestsrv as its DNS server) for the ACME tests.
packages=()
command -v php-cgi >/dev/null 2>&1 || packages+=(php-cgi)
command -v cgi-fcgi >/dev/null 2>&1 || packages+=(libfcgi-bin)
[ -x /usr/sbin/nginx ] || command -v nginx >/dev/null 2>&1 || packages+=(nginx)
compgen -G '/usr/sbin/php-fpm*' >/dev/null || packages+=(php-fpm)
command -v curl >/dev/null 2>&1 || packages+=(curl)
[ -x /usr/bin/php-cgi8.2 ] || packages+=(php8.2-cgi)
[ -f /usr/include/php/20220829/main/php.h ] || packages+=(php8.2-dev)
command -v ps >/dev/null 2>&1 || packages+=(procps)
command -v h2load >/dev/null 2>&1 || packages+=(nghttp2-client)
command -v openssl >/dev/null 2>&1 || packages+=(openssl)
command -v systemd-analyze >/dev/null 2>&1 || packages+=(systemd)
command -v promtool >/dev/null 2>&1 || packages+=(prometheus)
command -v chromium >/dev/null 2>&1 || packages+=(chromium)
/usr/bin/python3 -c 'import h2, hpack, hyperframe' >/dev/null 2>&1 || packages+=(python3-h2 python3-hyperframe)
command -v slowhttptest >/dev/null 2>&1 || packages+=(slowhttptest)
command -v pebble >/dev/null 2>&1 || packages+=(pebble)
command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || packages+=(mariadb-server mariadb-client)
php-cgi -m 2>/dev/null | grep -qx mysqli || packages+=(php-mysql)
[ -f /usr/share/wordpress/wp-settings.php ] || packages+=(wordpress)
[ -d /usr/share/wordpress/wp-content/themes/twentytwentyone ] || packages+=(wordpress-theme-twentytwentyone)
[ -x /usr/sbin/apache2 ] || packages+=(apache2)
compgen -G '/usr/lib/apache2/modules/libphp*.so' >/dev/null || packages+=(libapache2-mod-php)
command -v htpasswd >/dev/null 2>&1 || packages+=(apache2-utils)
[ -f /usr/share/mediawiki/index.php ] || packages+=(mediawiki)
php-cgi -m 2>/dev/null | grep -qx sqlite3 || packages+=(php-sqlite3)
command -v php >/dev/null 2>&1 || packages+=(php-cli)
command -v convert >/dev/null 2>&1 || packages+=(imagemagick)
# The Python application tests (tests/tests/apps: Flask and Django in threaded pools) and the WSGI
# peers of the benchmark (gunicorn, uWSGI): scripts/lib/packages.sh lists them.
mapfile -t python_packages < <(python_app_packages; wsgi_peer_packages)
packages+=("${python_packages[@]}")
if [ ! -f /usr/share/phpmyadmin/index.php ]; then
    packages+=(phpmyadmin)
    # No database of its own on the system server (dbconfig-common): the test brings its own.
    as_root=""
    [ "$(id -u)" -eq 0 ] || as_root="sudo"
    echo "phpmyadmin phpmyadmin/dbconfig-install boolean false" | $as_root debconf-set-selections
fi
install_packages "${packages[@]}"

# Validators for the deployment assets (tests/tests/operations/deploy_assets.rs).
if ! command -v kubernetes-validate >/dev/null 2>&1; then
    python3 -m pip install --quiet kubernetes-validate \
        || python3 -m pip install --quiet --break-system-packages kubernetes-validate
fi

cargo build --workspace --all-targets
cargo test --workspace "$@"
