#!/usr/bin/env bash
# Checks deploy/ as far as a machine without a Docker engine can (docs/DEPLOY.md, "What was checked"):
# the compose file with Debian's Compose (with and without the monitoring profile, and that it refuses to
# start without the database password), the systemd units with systemd-analyze, and deploy/secrets.sh in a
# scratch copy (it makes every secret the compose file names, and keeps them on a second run).
#
#   scripts/deploy-check.sh       (builds the jobsched binary if needed; installs docker-compose and
#                                  systemd from apt if missing)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=apt.sh
source scripts/apt.sh
log() { printf 'deploy-check: %s\n' "$*" >&2; }
fail() { log "$*"; exit 1; }

apt_install docker-compose systemd
cargo build -q -p jobsched-daemons --bin jobsched
bin=$PWD/target/debug/jobsched
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

log "secrets.sh in a scratch copy"
cp -r deploy "$scratch/deploy"
mkdir -p "$scratch/target/release" && ln -s "$bin" "$scratch/target/release/jobsched"
(cd "$scratch" && PATH=/usr/sbin:/usr/bin:/sbin:/bin deploy/secrets.sh >/dev/null)
for f in $(sed -n 's/^  [a-z_]*: {file: \.\/secrets\/\(.*\)}$/\1/p' deploy/compose.yaml); do
    [[ -s $scratch/deploy/secrets/$f ]] || fail "secrets.sh did not make secrets/$f"
done
sum1=$(cat "$scratch"/deploy/secrets/* | sha256sum)
(cd "$scratch" && PATH=/usr/sbin:/usr/bin:/sbin:/bin deploy/secrets.sh >/dev/null)
[[ $(cat "$scratch"/deploy/secrets/* | sha256sum) == "$sum1" ]] || fail "a second secrets.sh run replaced a secret"
"$bin" keygen >/dev/null # the key format secrets.sh relies on

log "compose.yaml (docker-compose config)"
(cd "$scratch/deploy" && docker-compose -f compose.yaml config -q) || fail "compose.yaml is invalid"
(cd "$scratch/deploy" && docker-compose -f compose.yaml --profile monitoring config -q) || fail "compose.yaml (monitoring) is invalid"
services=$(cd "$scratch/deploy" && docker-compose -f compose.yaml --profile monitoring config --services | sort | tr '\n' ' ')
[[ $services == "executor-1 executor-2 grafana kafka mariadb prometheus scheduler zookeeper " ]] ||
    fail "unexpected services: $services"
rm "$scratch/deploy/.env"
if (cd "$scratch/deploy" && env -u JOBSCHED_DB_PASSWORD docker-compose -f compose.yaml config -q 2>/dev/null); then
    fail "compose.yaml starts without the database password"
fi

log "systemd units (systemd-analyze verify)"
for unit in deploy/systemd/*.service; do
    # verify wants the command to exist: check a copy that runs this build's binary.
    sed "s|/usr/local/bin/jobsched |$bin |" "$unit" >"$scratch/$(basename "$unit")"
    out=$(SYSTEMD_LOG_LEVEL=warning systemd-analyze verify "$scratch/$(basename "$unit")" 2>&1 || true)
    # Outside a booted systemd, verify may note the missing manager; anything about the unit fails.
    if grep -q "$(basename "$unit")" <<<"$out"; then
        fail "$unit: $out"
    fi
done

log "ok"
