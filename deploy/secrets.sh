#!/usr/bin/env bash
# Makes every secret of deploy/compose.yaml once, in deploy/secrets/ (a directory only you can enter),
# and the database password in deploy/.env for compose's interpolation. An existing secret is never
# replaced: run it again after deleting one to make that one anew.
#
#   deploy/secrets.sh                 uses `jobsched` from PATH, else target/release/jobsched
#
# The containers run as uid 10001: as root the files are given to that uid with mode 0600; otherwise they
# are mode 0644 inside the 0700 directory (compose mounts them as they are on the host).
set -euo pipefail
cd "$(dirname "$0")"
jobsched=$(command -v jobsched || echo ../target/release/jobsched)
[[ -x $jobsched ]] || { echo "secrets.sh: build jobsched first (cargo build --release -p jobsched-daemons)" >&2; exit 1; }

umask 077
mkdir -p secrets
chmod 0700 secrets
random() { od -An -tx1 -N32 /dev/urandom | tr -d ' \n'; }
mk() { # make FILE COMMAND...: writes the command's output to FILE unless FILE exists
    local file=secrets/$1
    shift
    if [[ -e $file ]]; then
        echo "secrets.sh: keeping $file"
        return
    fi
    "$@" >"$file"
    echo "secrets.sh: made $file"
}
mk db-password random
mk admin-password random
mk grafana-password random
mk metrics-token random
mk jwt.key random
mk zk-auth bash -c "printf 'jobsched:%s' $(random)"
mk cluster.key "$jobsched" keygen
[[ -e secrets/params.key ]] || "$jobsched" secrets init --secret-key-file secrets/params.key >/dev/null
echo "JOBSCHED_DB_PASSWORD=$(cat secrets/db-password)" >.env
chmod 0600 .env
if [[ $(id -u) == 0 ]]; then
    chown 10001:10001 secrets/*
    chmod 0600 secrets/*
else
    chmod 0644 secrets/*
fi
echo "secrets.sh: done; the first administrator's password is in deploy/secrets/admin-password"
