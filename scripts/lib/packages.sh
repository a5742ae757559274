# shellcheck shell=bash
# Installing missing Debian/Ubuntu packages: sourced by scripts/test.sh and scripts/run.sh, so that
# both install the same way.

# install_packages PACKAGE...: refreshes the package lists, then installs the packages named
# (through sudo unless already root). Does nothing when none are named.
install_packages() {
    (($#)) || return 0
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "installing: $*"
    $sudo apt-get update -qq
    # Through env, so that the setting survives sudo's cleared environment.
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}

# python_app_packages: the Debian packages of the Python application tests (tests/tests/apps)
# and of the benchmark's WSGI scenario that are missing here, one a line. Debian's own python3
# (/usr/bin/python3) must import them: the tests never use another python3 that PATH may find.
# flup, which Debian 12 lacks, is installed from the Python package registry into a venv by the
# tests themselves (tests/src/wsgi.rs) with Debian's pip, so python3-venv and python3-pip are
# needed for that; libpython3.11-dev for building paddock-wsgi.
python_app_packages() {
    /usr/bin/python3 -c 'import flask' >/dev/null 2>&1 || echo python3-flask
    /usr/bin/python3 -c 'import django' >/dev/null 2>&1 || echo python3-django
    /usr/bin/python3 -c 'import venv' >/dev/null 2>&1 || echo python3-venv
    /usr/bin/python3 -c 'import pip' >/dev/null 2>&1 || echo python3-pip
    # paddock's own WSGI worker (wsgi-worker/, built with the workspace) links Debian's libpython.
    compgen -G '/usr/lib/*/libpython3.11.so' >/dev/null || echo libpython3.11-dev
}

# wsgi_peer_packages: the servers the benchmark compares paddock with on the same Flask app
# (tests/bench/run.sh), missing here, one a line.
wsgi_peer_packages() {
    command -v gunicorn >/dev/null 2>&1 || echo gunicorn
    command -v uwsgi >/dev/null 2>&1 || echo uwsgi
    [ -e /usr/lib/uwsgi/plugins/python3_plugin.so ] || echo uwsgi-plugin-python3
}
