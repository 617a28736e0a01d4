#!/usr/bin/env bash
# The project's test command (README, "Test"); CI runs it through .ci/run on a clean clone.
#
#   scripts/test.sh
#
# Checks formatting and lints, runs every test of the workspace (unit tests, the backend conformance suite,
# the engine behaviour tests, doc examples, the embedded example for 5 s), then a smoke-sized run of each
# benchmark so the benchmark never rots.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "format"
cargo fmt --all -- --check

step "lints"
cargo clippy --workspace --all-targets -- -D warnings

step "tests"
cargo test --workspace

step "benchmarks (smoke size)"
cargo run -q -p jobsched-bench -- throughput --tasks 2000 --capacity 64 --runs 1
cargo run -q -p jobsched-bench -- scale --jobs 20000 --fires 500 --runs 1

step "all green"
