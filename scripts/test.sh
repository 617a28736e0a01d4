#!/usr/bin/env bash
# The project's test command (README, "Test"); CI runs it through .ci/run on a clean clone.
#
#   scripts/test.sh
#
# Starts the servers the tests need (scripts/services.sh: installs MariaDB if missing), checks formatting,
# lints and the API docs' links, runs every test of the workspace (unit tests, the backend conformance suite on the in-memory
# backends, on SQLite files and on the real MariaDB server, the stores' durability, restart and bad-input
# tests, the engine behaviour tests, the multi-process HA and failure-recovery suites (daemons/tests/ha.rs,
# faults.rs at CI size, as scripts/faults.sh runs them), the security suites (permission matrix, audit,
# secrets, TLS, backups), doc examples, the embedded example), then the Web UI in a real headless Chromium
# (scripts/e2e.sh: installs Chromium and the harness), then the API against its OpenAPI document
# (scripts/schemathesis.sh), the deployment files (scripts/deploy-check.sh), then a smoke-sized run of each benchmark workload in each mode
# (scripts/bench.sh smoke) so the benchmark never rots.
#
# Tests that need a server read it from the environment that `scripts/services.sh env` prints
# (JOBSCHED_TEST_MYSQL). With CI=true an unreachable server fails the run; elsewhere those tests are
# skipped with a printed reason.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "services"
scripts/services.sh start
eval "$(scripts/services.sh env)"

step "test receivers (aiosmtpd, the SMTP server of the alert tests)"
# shellcheck source=apt.sh
source scripts/apt.sh
apt_install python3-aiosmtpd

step "format"
cargo fmt --all -- --check

step "lints"
cargo clippy --workspace --all-targets -- -D warnings

step "API docs (no broken intra-doc links)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --lib

step "tests"
# The failure-recovery suite (daemons/tests/faults.rs) also stops and restarts each server of
# scripts/services.sh for 10 s; test binaries run one at a time, so no other test sees it.
JOBSCHED_FAULTS_SERVERS=1 cargo test --workspace

step "deployment files (compose, systemd units, secrets.sh; no Docker engine needed)"
scripts/deploy-check.sh

step "the Web UI in a real browser (headless Chromium, e2e/)"
scripts/e2e.sh

step "the API against its OpenAPI document (schemathesis)"
scripts/schemathesis.sh

step "benchmarks (smoke size: every workload in every mode, and the store figures)"
scripts/bench.sh smoke all all

step "all green"
