//! The workloads.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use jobsched::handler::{HandlerRegistry, NoopHandler};
use jobsched::{Backends, Event, Executor, ExecutorId, JobSpec, Scheduler, SchedulerConfig};
use tokio::sync::broadcast;

use crate::measure::{Figure, cpu_secs, json_line, peak_rss_mib, rss_mib, table};

fn config(events: usize, storage_concurrency: usize) -> SchedulerConfig {
    SchedulerConfig {
        scheduler_id: "bench".into(),
        event_capacity: events,
        storage_concurrency,
        ..SchedulerConfig::default()
    }
}

/// How a throughput run learns that every task ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Observe {
    /// Poll the engine's counters every 10 ms (does not disturb the engine).
    Poll,
    /// Subscribe to the engine's events and count `Fired` and `Finished` (shows what a live subscriber costs).
    Events,
}

/// Parameters of a throughput run.
pub struct Throughput {
    pub tasks: usize,
    pub executors: usize,
    pub capacity: u32,
    pub via_execute: bool,
    pub observe: Observe,
    pub storage_concurrency: usize,
}

async fn executors(backends: &Backends, n: usize, capacity: u32) -> Vec<Executor> {
    let mut out = Vec::new();
    for i in 0..n {
        let mut handlers = HandlerRegistry::empty();
        handlers
            .register("noop", Arc::new(NoopHandler))
            .expect("valid name");
        out.push(
            Executor::builder(
                ExecutorId::new(format!("bench-{i}")).expect("valid id"),
                backends.clone(),
            )
            .with_capacity(capacity)
            .with_handlers(handlers)
            .start()
            .await
            .expect("executor starts"),
        );
    }
    out
}

/// A scheduler and its executors in this process.
struct Embedded {
    backends: Backends,
    s: Scheduler,
    execs: Vec<Executor>,
}

impl Embedded {
    /// Starts a scheduler (with room for `events` buffered events) and `n` executors, and waits until the
    /// scheduler is active.
    async fn start(events: usize, storage_concurrency: usize, n: usize, capacity: u32) -> Self {
        let backends = Backends::in_memory();
        let s = Scheduler::builder(backends.clone())
            .with_config(config(events, storage_concurrency))
            .start();
        let execs = executors(&backends, n, capacity).await;
        s.wait_active().await;
        Embedded { backends, s, execs }
    }

    async fn stop(self) {
        for e in &self.execs {
            e.shutdown().await;
        }
        self.s.shutdown().await;
    }
}

/// Waits until the engine has read every job written so far.
async fn engine_caught_up(s: &Scheduler, jobs: u64) {
    loop {
        if s.engine_stats().await.is_some_and(|st| st.jobs >= jobs) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Creates `n` one-shot no-op jobs firing at `at`, in batches.
async fn one_shots(s: &Scheduler, n: usize, at: DateTime<Utc>, tag: &str) {
    for chunk in (0..n).collect::<Vec<_>>().chunks(10_000) {
        let specs = chunk
            .iter()
            .map(|i| JobSpec::once(format!("{tag}-{i}"), at, "").with_type("noop"))
            .collect();
        s.create_jobs(specs).await.expect("jobs created");
    }
}

/// Counts `Fired` and `Finished` events until `n` of each arrived; returns when the last of each came.
async fn count(events: &mut broadcast::Receiver<Event>, n: usize) -> (Instant, Instant) {
    let (mut fired, mut finished) = (0, 0);
    let (mut last_fired, mut last_finished) = (Instant::now(), Instant::now());
    while fired < n || finished < n {
        match events.recv().await {
            Ok(Event::Fired { .. }) => {
                fired += 1;
                last_fired = Instant::now();
            }
            Ok(Event::Finished(_)) => {
                finished += 1;
                last_finished = Instant::now();
            }
            Ok(_) => {}
            Err(broadcast::error::RecvError::Lagged(k)) => {
                panic!("the benchmark missed {k} events")
            }
            Err(e) => panic!("events closed: {e}"),
        }
    }
    (last_fired, last_finished)
}

/// Sleeps until the wall clock reads `at`.
async fn until(at: DateTime<Utc>) {
    if let Ok(d) = (at - Utc::now()).to_std() {
        tokio::time::sleep(d).await;
    }
}

fn round_up_secs(t: DateTime<Utc>, secs: i64) -> DateTime<Utc> {
    let s = t.timestamp() + secs;
    DateTime::from_timestamp(s, 0).expect("valid time")
}

pub async fn throughput(runs: usize, p: Throughput) {
    let Throughput {
        tasks,
        executors: n_exec,
        capacity,
        via_execute,
        observe,
        storage_concurrency,
    } = p;
    let mut tps = Figure::new("end-to-end tasks/s (fire → recorded result)", "tasks/s");
    let mut fire_rate = Figure::new(
        "tasks recorded /s (fired or executed; polled: ±10 ms)",
        "tasks/s",
    );
    let mut cpu = Figure::new("CPU per task (scheduler + executors)", "µs");
    let mut p_last = Figure::new("time from the fire instant to the last result", "ms");
    for run in 0..runs {
        let emb = Embedded::start(tasks * 3 + 1024, storage_concurrency, n_exec, capacity).await;
        let s = emb.s.clone();
        let mut events = s.subscribe();
        let mut late = false;
        let job = if via_execute {
            let job = s
                .create_job(JobSpec::manual("bulk", "").with_type("noop"))
                .await
                .expect("job");
            engine_caught_up(&s, 1).await;
            Some(job.job_id)
        } else {
            let at = round_up_secs(Utc::now(), 3);
            one_shots(&s, tasks, at, "t").await;
            engine_caught_up(&s, tasks as u64).await;
            late = Utc::now() > at;
            until(at).await;
            None
        };
        let cpu0 = cpu_secs();
        let start = Instant::now();
        if let Some(job_id) = job {
            // Every request in flight at once, as a bulk /execute would do.
            let mut set = tokio::task::JoinSet::new();
            for chunk in 0..(tasks / 1000).max(1) {
                let s = s.clone();
                let job_id = job_id.clone();
                let n = if chunk == tasks / 1000 - 1 {
                    tasks - chunk * 1000
                } else {
                    1000
                };
                set.spawn(async move {
                    let reqs: Vec<_> = (0..n).map(|_| s.execute(&job_id, None)).collect();
                    for r in reqs {
                        r.await.expect("recorded");
                    }
                });
            }
            set.join_all().await;
        }
        let (fired_done, done) = if observe == Observe::Poll {
            drop(events);
            // All tasks are recorded once no fire is pending and the engine holds every task (or, for
            // `execute`, once every call returned, which happened above).
            let mut recorded = via_execute.then(Instant::now);
            loop {
                let st = s.engine_stats().await.expect("active");
                if recorded.is_none()
                    && st.scheduled == 0
                    && st.inserting == 0
                    && st.job_revision > 0
                {
                    recorded = Some(Instant::now());
                }
                if st.active_tasks == 0 && st.scheduled == 0 && st.inserting == 0 {
                    let now = Instant::now();
                    break (recorded.unwrap_or(now), now);
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        } else {
            count(&mut events, tasks).await
        };
        let elapsed = done.duration_since(start).as_secs_f64();
        let cpu_used = cpu_secs() - cpu0;
        tps.values.push(tasks as f64 / elapsed);
        fire_rate
            .values
            .push(tasks as f64 / fired_done.duration_since(start).as_secs_f64());
        cpu.values.push(cpu_used / tasks as f64 * 1e6);
        p_last.values.push(elapsed * 1000.0);
        json_line(
            "throughput",
            run,
            serde_json::json!({"tasks": tasks, "executors": n_exec, "capacity": capacity, "setup_late": late,
                "via": if via_execute { "execute" } else { "fire" }, "observe": format!("{observe:?}"),
                "storage_concurrency": storage_concurrency}),
            serde_json::json!({"tasks_per_sec": tasks as f64 / elapsed, "elapsed_ms": elapsed * 1000.0,
                "cpu_us_per_task": cpu_used / tasks as f64 * 1e6}),
        );
        emb.stop().await;
    }
    table(
        "Throughput: embedded, in-memory backends, no-op handler",
        &format!(
            "{tasks} tasks ({}); {n_exec} executors × {capacity} slots; completion observed by {}; {runs} runs",
            if via_execute {
                "one job executed N times, all requests in flight"
            } else {
                "one-shot jobs firing at the same instant"
            },
            if observe == Observe::Poll {
                "polling engine counters every 10 ms"
            } else {
                "an event subscriber"
            }
        ),
        &[tps, fire_rate, cpu, p_last],
    );
}

/// A daily cron expression for job `i`: 3,600 distinct ones, all at 03:mm:ss.
fn daily(i: usize) -> String {
    format!("{} {} 3 * * *", i % 60, (i / 60) % 60)
}

pub async fn scale(runs: usize, jobs: usize, fires: usize) {
    let mut reg = Figure::new(format!("register {jobs} cron jobs"), "s");
    let mut reg_rate = Figure::new("registration rate", "jobs/s");
    let mut rss = Figure::new(format!("RSS with {jobs} jobs (store + engine)"), "MiB");
    let mut per_job = Figure::new("memory per job", "bytes");
    let mut reload = Figure::new(format!("reload {jobs} jobs (restart → active)"), "s");
    let mut fire_big = Figure::new(format!("fire cost, {jobs} jobs scheduled"), "µs/fire");
    let mut fire_empty = Figure::new("fire cost, empty scheduler", "µs/fire");
    let exe = std::env::current_exe().expect("own path");
    for _ in 0..runs {
        // A fresh process per run: memory freed by one run would otherwise flatter the next one's RSS.
        let out = std::process::Command::new(&exe)
            .args([
                "scale-once",
                "--jobs",
                &jobs.to_string(),
                "--fires",
                &fires.to_string(),
            ])
            .output()
            .expect("the scale run starts");
        let stdout = String::from_utf8_lossy(&out.stdout);
        #[allow(clippy::print_stdout)]
        {
            print!("{stdout}");
        }
        assert!(
            out.status.success(),
            "the scale run failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let line = stdout
            .lines()
            .find(|l| l.starts_with('{'))
            .expect("a JSON line");
        let v: serde_json::Value = serde_json::from_str(line).expect("JSON");
        let f = &v["figures"];
        let get = |k: &str| f[k].as_f64().expect("figure");
        reg.values.push(get("register_s"));
        reg_rate.values.push(jobs as f64 / get("register_s"));
        rss.values.push(get("rss_mib"));
        per_job.values.push(get("bytes_per_job"));
        reload.values.push(get("reload_s"));
        fire_big.values.push(get("fire_us_big"));
        fire_empty.values.push(get("fire_us_empty"));
    }
    table(
        "Scale: embedded, in-memory backends",
        &format!(
            "{jobs} cron jobs firing once a day (3,600 distinct expressions), each run in a fresh process; per-fire \
             cost = time from the fire instant until {fires} one-shot jobs due together are recorded and dispatched, \
             / {fires}; {runs} runs"
        ),
        &[reg, reg_rate, rss, per_job, reload, fire_big, fire_empty],
    );
}

/// One scale run; prints its JSON line.
pub async fn scale_once(jobs: usize, fires: usize) {
    // Per-fire cost with nothing else scheduled.
    let empty = {
        let emb = Embedded::start(fires * 3 + 1024, 4, 2, 256).await;
        let us = fire_cost(&emb.s, fires, "empty").await;
        emb.stop().await;
        us
    };
    let before = rss_mib();
    let emb = Embedded::start(fires * 3 + 1024, 4, 2, 256).await;
    let s = emb.s.clone();
    let t0 = Instant::now();
    for chunk in (0..jobs).collect::<Vec<_>>().chunks(10_000) {
        let specs = chunk
            .iter()
            .map(|i| JobSpec::cron(format!("daily-{i}"), daily(*i), "").with_type("noop"))
            .collect();
        s.create_jobs(specs).await.expect("jobs created");
    }
    engine_caught_up(&s, jobs as u64).await;
    let reg_s = t0.elapsed().as_secs_f64();
    let after = rss_mib();
    let big = fire_cost(&s, fires, "big").await;
    s.shutdown().await;
    let t1 = Instant::now();
    let reloaded = Scheduler::builder(emb.backends.clone())
        .with_config(config(1024, 4))
        .start();
    reloaded.wait_active().await;
    let reload_s = t1.elapsed().as_secs_f64();
    json_line(
        "scale",
        0,
        serde_json::json!({"jobs": jobs, "fires": fires}),
        serde_json::json!({"register_s": reg_s, "rss_mib": after, "peak_rss_mib": peak_rss_mib(),
            "bytes_per_job": (after - before) * 1024.0 * 1024.0 / jobs as f64, "reload_s": reload_s,
            "fire_us_big": big, "fire_us_empty": empty}),
    );
    reloaded.shutdown().await;
    emb.stop().await;
}

/// Microseconds per fire: `n` one-shot jobs due at the same instant, until all are recorded and dispatched.
async fn fire_cost(s: &Scheduler, n: usize, tag: &str) -> f64 {
    let mut events = s.subscribe();
    let known = s.engine_stats().await.map_or(0, |st| st.jobs);
    let at = round_up_secs(Utc::now(), 3);
    one_shots(s, n, at, tag).await;
    engine_caught_up(s, known + n as u64).await;
    until(at).await;
    let start = Instant::now();
    let (last, _) = count(&mut events, n).await;
    last.duration_since(start).as_secs_f64() * 1e6 / n as f64
}
