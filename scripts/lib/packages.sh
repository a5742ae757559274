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
