//! The workloads of the performance suite, each in any [`Mode`]:
//!
//! * W1 drain: N no-op tasks enqueued at once, until every result is recorded;
//! * W2 precision: jobs firing every second, fire → start lag;
//! * W3 scale: many daily cron jobs plus one every-second job: registration, RSS, reload, that job's lag;
//! * W4 shell: W1 with `true` through the shell handler (fork and exec included).

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use jobsched::{ExecutionQuery, JobId, JobSpec, PageRequest, Scheduler, TaskStatus};

use crate::measure::{Figure, cpu_secs, json_line, peak_rss_mib, rss_mib, table};
use crate::rig::{Mode, Rig, RigSpec};

/// How W1's tasks are created.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Via {
    /// One manual job run N times through `Scheduler::execute` (the library call behind
    /// `POST /api/jobs/{id}/execute`), every request in flight at once.
    Execute,
    /// N one-shot jobs due at the same instant.
    Fire,
}

/// Waits until the engine has read `jobs` jobs.
async fn engine_caught_up(s: &Scheduler, jobs: u64) {
    while s.engine_stats().await.is_none_or(|st| st.jobs < jobs) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until nothing is due, being written or active; polls every 2 ms. Says on standard error what it
/// still waits for every 30 s (a stall shows instead of hanging silently).
async fn idle(s: &Scheduler) -> Instant {
    let mut next_note = Instant::now() + Duration::from_secs(30);
    loop {
        let st = s.engine_stats().await.expect("active");
        if st.scheduled == 0 && st.inserting == 0 && st.active_tasks == 0 {
            return Instant::now();
        }
        if Instant::now() >= next_note {
            eprintln!("still waiting for the engine to be idle: {st:?}");
            next_note += Duration::from_secs(30);
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Sleeps until the wall clock reads `at`.
async fn until(at: DateTime<Utc>) {
    if let Ok(d) = (at - Utc::now()).to_std() {
        tokio::time::sleep(d).await;
    }
}

/// The whole second `secs` seconds after the current one.
fn second_after(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(Utc::now().timestamp() + secs, 0).expect("valid time")
}

/// Records matching `q` (every page).
async fn records(rig: &Rig, mut q: ExecutionQuery) -> Vec<jobsched::ExecutionRecord> {
    let mut out = Vec::new();
    for page in 1.. {
        q.page = PageRequest::new(page, 1000).expect("valid page");
        let p = rig.storage().list_executions(&q).await.expect("records");
        let n = p.items.len();
        out.extend(p.items);
        if n < 1000 {
            return out;
        }
    }
    out
}

/// How many records match `q`.
async fn count(rig: &Rig, mut q: ExecutionQuery) -> u64 {
    q.page = PageRequest::new(1, 1).expect("valid page");
    rig.storage()
        .list_executions(&q)
        .await
        .expect("count")
        .total
}

/// Fire → start lags of `recs`, ms, sorted.
fn lags(recs: &[jobsched::ExecutionRecord]) -> Vec<f64> {
    let mut v: Vec<f64> = recs
        .iter()
        .filter_map(|r| {
            r.start_time
                .map(|s| (s - r.scheduled_time).num_microseconds().unwrap_or(0) as f64 / 1000.0)
        })
        .collect();
    v.sort_by(f64::total_cmp);
    v
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Parameters of W1 and W4.
pub struct Drain {
    pub spec: RigSpec,
    pub tasks: usize,
    /// W4: `true` through the shell handler instead of the no-op handler.
    pub shell: bool,
    pub via: Via,
}

pub async fn drain(runs: usize, p: Drain) {
    let (w, what) = if p.shell {
        ("W4", "shell tasks (`true`)")
    } else {
        ("W1", "no-op tasks")
    };
    let mut enqueue = Figure::new(
        format!("enqueue rate ({} {what}, every request in flight)", p.tasks),
        "tasks/s",
    );
    let mut tps = Figure::new("drain: tasks/s, start → every result recorded", "tasks/s");
    let mut cpu = Figure::new("CPU per task, scheduler + executors", "µs");
    let mut server_cpu = Figure::new(
        "CPU per task, servers (MariaDB + ZooKeeper + Kafka broker)",
        "µs",
    );
    for run in 0..runs {
        let rig = Rig::start(&p.spec).await;
        let s = rig.scheduler.clone();
        let spec = |id: String| {
            if p.shell {
                JobSpec::manual(id, "true")
            } else {
                JobSpec::manual(id, "").with_type("noop")
            }
        };
        let mut late = false;
        let job = match p.via {
            Via::Execute => {
                let job = s.create_job(spec("bulk".into())).await.expect("job");
                engine_caught_up(&s, 1).await;
                Some(job.job_id)
            }
            Via::Fire => {
                let at = second_after(3);
                for chunk in (0..p.tasks).collect::<Vec<_>>().chunks(10_000) {
                    let specs = chunk
                        .iter()
                        .map(|i| {
                            let j = JobSpec::once(format!("t-{i}"), at, "true");
                            if p.shell { j } else { j.with_type("noop") }
                        })
                        .collect();
                    s.create_jobs(specs).await.expect("jobs");
                }
                engine_caught_up(&s, p.tasks as u64).await;
                late = Utc::now() > at;
                until(at).await;
                None
            }
        };
        let cpu0 = cpu_secs() + rig.executor_cpu_secs();
        let servers0 = rig.server_cpu_secs();
        let start = Instant::now();
        let enqueued = match job {
            Some(job_id) => {
                execute_all(&s, &job_id, p.tasks).await;
                Instant::now()
            }
            None => start,
        };
        let done = idle(&s).await;
        let elapsed = done.duration_since(start).as_secs_f64();
        let cpu_used = cpu_secs() + rig.executor_cpu_secs() - cpu0;
        let servers_used = servers0.zip(rig.server_cpu_secs()).map(|(a, b)| b - a);
        if let Some(used) = servers_used {
            server_cpu.values.push(used / p.tasks as f64 * 1e6);
        }
        let succeeded = count(
            &rig,
            ExecutionQuery {
                statuses: vec![TaskStatus::Succeeded],
                ..ExecutionQuery::default()
            },
        )
        .await;
        assert_eq!(succeeded, p.tasks as u64, "every task recorded succeeded");
        if p.via == Via::Execute {
            enqueue
                .values
                .push(p.tasks as f64 / enqueued.duration_since(start).as_secs_f64());
        }
        tps.values.push(p.tasks as f64 / elapsed);
        cpu.values.push(cpu_used / p.tasks as f64 * 1e6);
        json_line(
            &format!("{}-{}", w.to_lowercase(), p.spec.mode.name()),
            run,
            serde_json::json!({"mode": p.spec.mode.name(), "tasks": p.tasks, "executors": p.spec.executors,
                "capacity": p.spec.capacity, "prefetch": p.spec.prefetch,
                "via": format!("{:?}", p.via).to_lowercase(), "setup_late": late}),
            serde_json::json!({"tasks_per_sec": p.tasks as f64 / elapsed, "elapsed_ms": elapsed * 1000.0,
                "cpu_us_per_task": cpu_used / p.tasks as f64 * 1e6,
                "server_cpu_us_per_task": servers_used.map(|u| u / p.tasks as f64 * 1e6)}),
        );
        rig.stop().await;
    }
    let mut figures = vec![tps, cpu];
    if !server_cpu.values.is_empty() {
        figures.push(server_cpu);
    }
    if p.via == Via::Execute {
        figures.insert(0, enqueue);
    }
    table(
        &format!("{w} {}: {} {what}", p.spec.mode.name(), p.tasks),
        &format!(
            "{}; {}; {}; {runs} runs",
            p.spec.mode.describe(),
            p.spec.executors_text(),
            match p.via {
                Via::Execute =>
                    "one job run N times through `Scheduler::execute`, all requests in flight",
                Via::Fire => "N one-shot jobs due at the same instant, timed from that instant",
            }
        ),
        &figures,
    );
}

/// Runs `job` `n` times, every request in flight at once.
async fn execute_all(s: &Scheduler, job: &JobId, n: usize) {
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..n {
        let (s, job) = (s.clone(), job.clone());
        set.spawn(async move { s.execute(&job, None).await.expect("recorded") });
    }
    set.join_all().await;
}

/// Creates `n` jobs firing every second, in batches.
async fn every_second(s: &Scheduler, n: usize, tag: &str) {
    for chunk in (0..n).collect::<Vec<_>>().chunks(10_000) {
        let specs = chunk
            .iter()
            .map(|i| JobSpec::cron(format!("{tag}-{i}"), "* * * * * *", "").with_type("noop"))
            .collect();
        s.create_jobs(specs).await.expect("jobs created");
    }
}

/// Lets `jobs` every-second jobs fire for `secs` whole seconds from the next-but-one second; returns the
/// fire → start lags of those fires (ms, sorted) and the CPU share of this process meanwhile (%), after
/// checking every one of those fires was recorded and succeeded.
async fn window(rig: &Rig, jobs: usize, secs: u64, job_id: Option<&JobId>) -> (Vec<f64>, f64) {
    let from = second_after(2);
    let to = from + chrono::TimeDelta::seconds(secs as i64);
    until(from).await;
    let cpu0 = cpu_secs();
    until(to).await;
    let cpu_pct = (cpu_secs() - cpu0) / secs as f64 * 100.0;
    let q = ExecutionQuery {
        job_id: job_id.cloned(),
        from: Some(from),
        to: Some(to),
        ..ExecutionQuery::default()
    };
    let expected = jobs as u64 * secs;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let done = count(
            rig,
            ExecutionQuery {
                statuses: vec![TaskStatus::Succeeded],
                ..q.clone()
            },
        )
        .await;
        if done >= expected {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {done} of {expected} fires of the window succeeded"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let recs = records(rig, q).await;
    assert_eq!(recs.len() as u64, expected, "one record per job and second");
    (lags(&recs), cpu_pct)
}

/// Parameters of W2.
pub struct Precision {
    pub spec: RigSpec,
    pub jobs: usize,
    pub secs: u64,
}

pub async fn precision(runs: usize, p: Precision) {
    let mut p50 = Figure::new("fire → start lag p50", "ms");
    let mut p99 = Figure::new("fire → start lag p99", "ms");
    let mut max = Figure::new("fire → start lag max", "ms");
    let mut cpu = Figure::new(
        match p.spec.mode {
            Mode::Distributed => "scheduler process CPU",
            _ => "process CPU (scheduler + executors)",
        },
        "% of a core",
    );
    for run in 0..runs {
        let rig = Rig::start(&p.spec).await;
        every_second(&rig.scheduler, p.jobs, "tick").await;
        engine_caught_up(&rig.scheduler, p.jobs as u64).await;
        let (l, c) = window(&rig, p.jobs, p.secs, None).await;
        p50.values.push(pct(&l, 0.5));
        p99.values.push(pct(&l, 0.99));
        max.values.push(pct(&l, 1.0));
        cpu.values.push(c);
        json_line(
            &format!("w2-{}", p.spec.mode.name()),
            run,
            serde_json::json!({"mode": p.spec.mode.name(), "jobs": p.jobs, "secs": p.secs,
                "executors": p.spec.executors, "capacity": p.spec.capacity, "prefetch": p.spec.prefetch}),
            serde_json::json!({"lag_p50_ms": pct(&l, 0.5), "lag_p99_ms": pct(&l, 0.99),
                "lag_max_ms": pct(&l, 1.0), "samples": l.len(), "cpu_pct": c}),
        );
        rig.stop().await;
    }
    table(
        &format!(
            "W2 {}: {} jobs firing every second for {} s",
            p.spec.mode.name(),
            p.jobs,
            p.secs
        ),
        &format!(
            "{}; {}; lag = the executor's start time − the fire time, every fire of the \
             window (all checked recorded and succeeded); {runs} runs",
            p.spec.mode.describe(),
            p.spec.executors_text(),
        ),
        &[p50, p99, max, cpu],
    );
}

/// Parameters of W3.
pub struct Scale {
    pub spec: RigSpec,
    pub jobs: usize,
    pub lag_secs: u64,
}

/// A daily cron expression for job `i`: 3,600 distinct ones, all at 03:mm:ss.
fn daily(i: usize) -> String {
    format!("{} {} 3 * * *", i % 60, (i / 60) % 60)
}

/// W3: each run in a fresh process (`w3-once`), so memory freed by one run does not flatter the next.
pub async fn scale(runs: usize, p: Scale, args: Vec<String>) {
    let mut reg = Figure::new(format!("register {} cron jobs", p.jobs), "s");
    let mut reg_rate = Figure::new("registration rate", "jobs/s");
    let mut rss = Figure::new("scheduler process RSS with every job loaded", "MiB");
    let mut reload = Figure::new("reload: scheduler start → active", "s");
    let mut p99 = Figure::new("every-second job: fire → start lag p99", "ms");
    let exe = std::env::current_exe().expect("own path");
    for _ in 0..runs {
        let out = std::process::Command::new(&exe)
            .arg("w3-once")
            .args(&args)
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
        let get = |k: &str| v["figures"][k].as_f64().expect("figure");
        reg.values.push(get("register_s"));
        reg_rate.values.push(p.jobs as f64 / get("register_s"));
        rss.values.push(get("rss_mib"));
        reload.values.push(get("reload_s"));
        p99.values.push(get("lag_p99_ms"));
    }
    table(
        &format!("W3 {}: {} cron jobs", p.spec.mode.name(), p.jobs),
        &format!(
            "{}; jobs firing once a day (3,600 distinct expressions, 10,000 per call) plus one job firing every \
             second, its lag over {} s with everything loaded; RSS of the scheduler's process (in `memory` it \
             holds the store too); reload = a new scheduler on freshly opened backends until active; each run \
             a fresh process; {runs} runs",
            p.spec.mode.describe(),
            p.lag_secs
        ),
        &[reg, reg_rate, rss, reload, p99],
    );
}

/// One W3 run; prints its JSON line.
pub async fn scale_once(p: Scale) {
    let mut rig = Rig::start(&p.spec).await;
    let s = rig.scheduler.clone();
    let t0 = Instant::now();
    for chunk in (0..p.jobs).collect::<Vec<_>>().chunks(10_000) {
        let specs = chunk
            .iter()
            .map(|i| JobSpec::cron(format!("daily-{i}"), daily(*i), "").with_type("noop"))
            .collect();
        s.create_jobs(specs).await.expect("jobs created");
    }
    engine_caught_up(&s, p.jobs as u64).await;
    let reg_s = t0.elapsed().as_secs_f64();
    let tick = s
        .create_job(JobSpec::cron("tick", "* * * * * *", "").with_type("noop"))
        .await
        .expect("the every-second job");
    engine_caught_up(&s, p.jobs as u64 + 1).await;
    let (l, _) = window(&rig, 1, p.lag_secs, Some(&tick.job_id)).await;
    let rss = rss_mib();
    let reload = rig.restart_scheduler().await.as_secs_f64();
    json_line(
        &format!("w3-{}", p.spec.mode.name()),
        0,
        serde_json::json!({"mode": p.spec.mode.name(), "jobs": p.jobs, "lag_secs": p.lag_secs}),
        serde_json::json!({"register_s": reg_s, "rss_mib": rss, "peak_rss_mib": peak_rss_mib(),
            "reload_s": reload, "lag_p99_ms": pct(&l, 0.99), "lag_max_ms": pct(&l, 1.0)}),
    );
    rig.stop().await;
}
