#!/usr/bin/env bash
# The benchmark suite (BENCHMARKS.md): W1 drain, W2 fire precision, W3 scale, W4 shell tasks, and the
# store's write rates, in three modes, job registration through the HTTP API (api), and the Web UI's
# pages with 10,000 jobs and 1,000,000 runs on SQLite (ui).
#
#   scripts/bench.sh [smoke|full] [w1|w2|w3|w4|store|api|ui|all] [memory|sqlite|distributed|all]
#
# smoke  seconds per workload, debug build (part of scripts/test.sh, so the suite never rots)
# full   the sizes of BENCHMARKS.md, release build: W1 20,000 tasks with 1, 2 and 4 executors, W2 1,000
#        every-second jobs for 20 s, W3 100,000 and 1,000,000 daily cron jobs, W4 5,000 shell tasks; 3 runs
#        each (median, min, max); about an hour on 2 cores, most of it the distributed mode
#
# Defaults: full all all. The distributed mode and the store figures start the servers with
# scripts/services.sh (MariaDB, ZooKeeper, the Kafka broker). Output: markdown tables on standard output,
# one JSON line per run; BENCH_OUT=file also appends everything to that file.
set -euo pipefail
cd "$(dirname "$0")/.."

size=${1:-full}
workload=${2:-all}
mode=${3:-all}

case "$size" in
smoke) profile=() ; target=debug ;;
full) profile=(--release) ; target=release ;;
*) echo "bench.sh: unknown size '$size' (expected smoke or full)" >&2; exit 2 ;;
esac
case "$workload" in
w1 | w2 | w3 | w4 | store | api | ui | all) ;;
*) echo "bench.sh: unknown workload '$workload' (expected w1, w2, w3, w4, store, api, ui or all)" >&2; exit 2 ;;
esac
case "$mode" in
memory | sqlite | distributed) modes=("$mode") ;;
all) modes=(memory sqlite distributed) ;;
*) echo "bench.sh: unknown mode '$mode' (expected memory, sqlite, distributed or all)" >&2; exit 2 ;;
esac

if [[ "$mode" == all || "$mode" == distributed || "$workload" == store || "$workload" == api ]]; then
    scripts/services.sh start >&2
    eval "$(scripts/services.sh env)"
fi

# The executors of the distributed mode are `jobsched executor` processes: the binary next to the bench.
cargo build -q ${profile[@]+"${profile[@]}"} -p jobsched-bench -p jobsched-daemons
# Where cargo puts its output (CARGO_TARGET_DIR or the configured target directory, else ./target).
target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
bench=${target_dir:-target}/$target/jobsched-bench

run() {
    printf '\n$ jobsched-bench %s\n' "$*" >&2
    if [[ -n "${BENCH_OUT:-}" ]]; then
        "$bench" "$@" | tee -a "$BENCH_OUT"
    else
        "$bench" "$@"
    fi
}

wants() { [[ "$workload" == all || "$workload" == "$1" ]]; }

for m in "${modes[@]}"; do
    if [[ "$size" == smoke ]]; then
        wants w1 && run w1 --mode "$m" --tasks 2000 --runs 1
        wants w2 && run w2 --mode "$m" --jobs 50 --secs 2 --runs 1
        wants w3 && run w3 --mode "$m" --jobs 2000 --lag-secs 2 --runs 1
        wants w4 && run w4 --mode "$m" --tasks 200 --runs 1
    else
        if wants w1; then
            # 8 slots per executor; the scheduler may send 1,024 more to wait in each executor's queue
            # (executor_prefetch), so no slot waits for a round trip. Then the product default (no prefetch:
            # strict priority), slot-bound: a smaller N in the distributed mode, where a round trip is long.
            if [[ "$m" == distributed ]]; then
                # A distributed run drains a few hundred tasks a second (BENCHMARKS.md says why): the
                # scaling rows use 5,000 tasks.
                run w1 --mode "$m" --prefetch 1024
                for e in 1 4; do run w1 --mode "$m" --executors "$e" --prefetch 1024 --tasks 5000; done
                run w1 --mode "$m" --tasks 5000
            else
                for e in 1 2 4; do run w1 --mode "$m" --executors "$e" --prefetch 1024; done
                run w1 --mode "$m"
            fi
        fi
        wants w2 && run w2 --mode "$m"
        wants w4 && run w4 --mode "$m" --prefetch 1024
        if wants w3; then
            run w3 --mode "$m" --jobs 100000
            run w3 --mode "$m" --jobs 1000000
        fi
    fi
done

if wants store && [[ "$mode" == all || "$mode" == distributed ]]; then
    if [[ "$size" == smoke ]]; then
        run store --backend mysql --records 2000 --single-records 200 --runs 1
        run store --backend sqlite --records 2000 --single-records 200 --runs 1
    else
        run store --backend mysql
        run store --backend sqlite
    fi
fi

# Job registration through the HTTP API (the bulk route and one job per request), on both stores.
if wants api && [[ "$mode" == all || "$mode" == distributed ]]; then
    if [[ "$size" == smoke ]]; then
        run api --store sqlite --bulk-jobs 2000 --bulk-size 1000 --single-jobs 100 --runs 1
        run api --store mysql --bulk-jobs 2000 --bulk-size 1000 --single-jobs 100 --runs 1
    else
        run api --store sqlite
        run api --store mysql
    fi
fi

# The Web UI's pages on a large SQLite history (one `jobsched standalone`; no server needed).
if wants ui && [[ "$mode" == all || "$mode" == sqlite ]]; then
    if [[ "$size" == smoke ]]; then
        run ui --jobs 500 --history 20000 --requests 3 --runs 1
    else
        run ui --runs 3
    fi
fi
