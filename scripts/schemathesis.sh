#!/usr/bin/env bash
# The API against its own OpenAPI document with schemathesis (PyPI): property-based requests to every
# route, as an administrator (an API token), checking that no answer is a server error and that every
# answer keeps the document's contract (status codes, bodies, content types; invalid input refused).
#
#   scripts/schemathesis.sh [max examples per operation, default 40]
#
# The daemon under test is `jobsched scheduler` on a fresh SQLite file, with dispatch and coordination on
# the servers of scripts/services.sh and no executor: the jobs schemathesis makes with random commands
# are recorded, never run. Exits non-zero on any failure; the report is in $OUT (default
# target/schemathesis).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
EXAMPLES=${1:-40}
VERSION=4.32.5
OUT=${OUT:-$ROOT/target/schemathesis}

if ! command -v st >/dev/null 2>&1 || [[ $(st --version 2>/dev/null) != *"$VERSION"* ]]; then
    echo "schemathesis: installing schemathesis $VERSION (pip)" >&2
    python3 -m pip install --quiet --disable-pip-version-check "schemathesis==$VERSION"
fi
scripts/services.sh start kafka zookeeper >&2
eval "$(scripts/services.sh env)"
cargo build --quiet -p jobsched-daemons
BIN=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/debug/jobsched

rm -rf "$OUT"
mkdir -p "$OUT"
PASSWORD=$(python3 -c 'import secrets; print(secrets.token_urlsafe(18))')
TAG=st$(python3 -c 'import secrets; print(secrets.token_hex(4))')
"$BIN" keygen --out "$OUT/cluster.key" >/dev/null
(umask 077; echo "jobsched:$(python3 -c 'import secrets; print(secrets.token_hex(16))')" >"$OUT/zk.auth")
env -u JOBSCHED_STORE JOBSCHED_ADMIN_PASSWORD="$PASSWORD" JOBSCHED_LOG=warn \
    "$BIN" scheduler --listen 127.0.0.1:0 --data-dir "$OUT/data" --store "sqlite://$OUT/data/jobsched.db" \
    --kafka "$JOBSCHED_KAFKA" --zookeeper "$JOBSCHED_ZOOKEEPER/$TAG" --kafka-prefix "$TAG" \
    --cluster-key-file "$OUT/cluster.key" --zk-auth-file "$OUT/zk.auth" \
    --rate-limit-user 0 --rate-limit-client 0 --login-failures-per-minute 0 \
    >"$OUT/daemon.out" 2>"$OUT/daemon.log" &
DAEMON=$!
trap 'kill $DAEMON 2>/dev/null || true; wait $DAEMON 2>/dev/null || true' EXIT
deadline=$((SECONDS + 60))
until BASE=$(grep -o 'http://[0-9.:]*' "$OUT/daemon.out" 2>/dev/null) && curl -sf "$BASE/readyz" >/dev/null; do
    ((SECONDS < deadline)) || { echo "schemathesis: the daemon did not start; see $OUT/daemon.log" >&2; exit 1; }
    kill -0 $DAEMON 2>/dev/null || { echo "schemathesis: the daemon exited; see $OUT/daemon.log" >&2; exit 1; }
    sleep 0.1
done
SESSION=$(curl -sf -X POST "$BASE/api/auth/login" -H 'content-type: application/json' \
    -d "{\"name\": \"admin\", \"password\": \"$PASSWORD\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
# An API token: a password reset or a logout among the generated requests ends login sessions, not it.
TOKEN=$(curl -sf -X POST "$BASE/api/tokens" -H 'content-type: application/json' \
    -H "authorization: Bearer $SESSION" -d '{"name": "schemathesis"}' \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')

# Revoking tokens runs on its own, last: the generated requests find the run's own token in GET
# /api/tokens and would revoke it halfway.
run() {
    local name=$1
    shift
    echo "schemathesis: $EXAMPLES examples per operation against $BASE ($name)" >&2
    st --no-color --config-file scripts/schemathesis.toml run "$BASE/api/openapi.json" \
        --header "Authorization: Bearer $TOKEN" \
        --max-examples "$EXAMPLES" \
        --workers 1 \
        --seed "${SEED:-20261201}" \
        --generation-database none \
        --report junit --report-dir "$OUT/$name" \
        "$@" 2>&1 | tee "$OUT/$name.log"
}
run all --exclude-path '/api/tokens/{tokenId}'
run revoke --include-path '/api/tokens/{tokenId}'
echo "schemathesis: no server error and no contract mismatch" >&2
