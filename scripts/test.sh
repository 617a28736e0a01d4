#!/usr/bin/env bash
# The project's test command (README, "Test"); CI runs it through .ci/run on a clean clone.
#
#   scripts/test.sh
#
# Starts the servers the tests need (scripts/services.sh: installs MariaDB if missing), checks formatting
# and lints, runs every test of the workspace (unit tests, the backend conformance suite on the in-memory
# backends, on SQLite files and on the real MariaDB server, the stores' durability, restart and bad-input
# tests, the engine behaviour tests, doc examples, the embedded example), then a smoke-sized run of each
# benchmark so the benchmark never rots.
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

step "format"
cargo fmt --all -- --check

step "lints"
cargo clippy --workspace --all-targets -- -D warnings

step "tests"
cargo test --workspace

step "benchmarks (smoke size)"
cargo run -q -p jobsched-bench -- throughput --tasks 2000 --capacity 64 --runs 1
cargo run -q -p jobsched-bench -- scale --jobs 20000 --fires 500 --runs 1
cargo run -q -p jobsched-bench -- store --backend mysql --records 2000 --single-records 200 --runs 1
cargo run -q -p jobsched-bench -- store --backend sqlite --records 2000 --single-records 200 --runs 1
cargo run -q -p jobsched-bench -- kafka --tasks 500 --latency-jobs 5 --latency-secs 2 --runs 1

step "all green"
