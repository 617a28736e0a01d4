# Sourced by the scripts that install Debian packages: apt_install PKG… installs those not installed yet
# (apt-get update only when the first try fails), quietly; fails naming them.
apt_install() {
    local missing=()
    for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
    ((${#missing[@]} == 0)) && return 0
    printf 'installing %s (apt)\n' "${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -q "${missing[@]}" >/dev/null 2>&1; then
        apt-get update -q >/dev/null 2>&1 || true
        apt-get install -y -q "${missing[@]}" >/dev/null || {
            printf 'could not install %s\n' "${missing[*]}" >&2
            return 1
        }
    fi
}
