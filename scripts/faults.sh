#!/usr/bin/env bash
# The failure-recovery suite (docs/RELIABILITY.md): real faults injected into the distributed mode while it
# works — executors and the active scheduler killed with SIGKILL, an executor frozen past its session,
# poison records on the topics, bad API requests, MariaDB, the Kafka broker and ZooKeeper each stopped for
# 10 s — and the invariants checked on the store and on marker
# files the tasks write. Prints the fault table (time from each fault until fires resume); exits non-zero
# when an invariant breaks.
#
#   scripts/faults.sh [ci|full]
#
# ci    30 every-second jobs, bursts of 150 runs, a fault every 8 s (about 3 minutes; part of
#       scripts/test.sh through `cargo test --workspace`)
# full  200 every-second jobs, bursts of 1,000 runs, a fault every 15 s
#
# Also runs the scheduler high-availability test (daemons/tests/ha.rs: leader killed and frozen under 100
# every-second jobs, exactly-once fires checked). Starts the servers with scripts/services.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

size=${1:-ci}
case "$size" in
ci | full) ;;
*) echo "faults.sh: unknown size '$size' (expected ci or full)" >&2; exit 2 ;;
esac

scripts/services.sh start >&2
eval "$(scripts/services.sh env)"
export CI=${CI:-true} # an unreachable server fails the suite instead of skipping it
export JOBSCHED_FAULTS_SIZE=$size
export JOBSCHED_FAULTS_SERVERS=1 # stop and restart each server for 10 s too
cargo test -p jobsched-daemons --test faults --test ha -- --nocapture --test-threads 1
