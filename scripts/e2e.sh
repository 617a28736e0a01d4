#!/usr/bin/env bash
# The Web UI's browser tests (e2e/): a real headless Chromium driven by playwright-core.
#
#   scripts/e2e.sh            install what is missing, build jobsched, run every browser test
#   scripts/e2e.sh setup      only install (Chromium and Node.js from apt, the harness with npm ci)
#
# Installs Debian's chromium and, when `node` is missing, Debian's nodejs and npm; `npm ci` installs the
# harness pinned by e2e/package-lock.json (playwright-core only: it drives /usr/bin/chromium and downloads
# no browser). The distributed scenario needs the servers of scripts/services.sh and their settings in
# the environment (eval "$(scripts/services.sh env)"); with CI=true it fails without them, elsewhere it
# is skipped. Screenshots of every page (and of a failure) go to e2e/output/.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'e2e: %s\n' "$*" >&2; }

# shellcheck source=apt.sh
source "$(dirname "${BASH_SOURCE[0]}")/apt.sh"

setup() {
    apt_install chromium
    if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
        apt_install nodejs npm
    fi
    local major
    major=$(node -p 'process.versions.node.split(".")[0]')
    ((major >= 18)) || { log "Node.js 18 or newer is needed, found $(node --version)"; exit 1; }
    # Reinstall the harness only when its lock file changed.
    local stamp=e2e/node_modules/.lock-sha
    local want
    want=$(sha256sum e2e/package-lock.json | cut -d' ' -f1)
    if [[ ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
        log "installing the harness (npm ci)"
        (cd e2e && npm ci --no-audit --no-fund --loglevel=error)
        echo "$want" >"$stamp"
    fi
}

setup
[[ ${1:-} == setup ]] && exit 0

cargo build -p jobsched-daemons --bin jobsched
rm -rf e2e/output
cd e2e
node --test --test-concurrency=1 tests/
