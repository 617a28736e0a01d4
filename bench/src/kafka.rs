//! End to end through the real servers: MariaDB (store), Kafka (dispatch), ZooKeeper (coordination). The
//! scheduler and two executors run in this process but each has its own Kafka clients and ZooKeeper
//! session, so every task and result crosses the broker and every membership the ensemble.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use jobsched::handler::{HandlerRegistry, NoopHandler};
use jobsched::storage::MemoryStorage;
use jobsched::{Backends, Executor, ExecutorId, JobSpec, Scheduler, SchedulerConfig};
use jobsched_kafka::{KafkaConfig, KafkaDispatcher};
use jobsched_zk::{ZkConfig, ZkCoordinator};
use sqlx::Connection;

use crate::measure::{Figure, cpu_secs, json_line, table};

/// Parameters of the Kafka benchmark.
pub struct KafkaBench {
    pub mysql: String,
    pub kafka: String,
    pub zookeeper: String,
    pub tasks: usize,
    pub capacity: u32,
    pub latency_jobs: usize,
    pub latency_secs: u64,
}

struct Cluster {
    scheduler: Scheduler,
    executors: Vec<Executor>,
    pool: sqlx::MySqlPool,
    admin: String,
    db: String,
}

async fn start(p: &KafkaBench) -> Cluster {
    let tag = format!("{:08x}", fastrand::u32(..));
    let db = format!("jobsched_kbench_{tag}");
    let mut c = sqlx::MySqlConnection::connect(&p.mysql)
        .await
        .expect("MySQL server");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}")))
        .execute(&mut c)
        .await
        .expect("create the bench database");
    let store = jobsched_mysql::MysqlConfig::new(format!("{}/{db}", p.mysql))
        .with_max_connections(16)
        .connect()
        .await
        .expect("the store");
    let pool = store.pool().clone();
    let kafka = KafkaConfig::new(&p.kafka).with_prefix(format!("kbench{tag}"));
    let zk = ZkConfig::parse(&p.zookeeper)
        .expect("ZooKeeper hosts")
        .with_root(format!("/kbench-{tag}"));
    let remote = |kafka: KafkaConfig, zk: ZkConfig| async move {
        (
            Arc::new(KafkaDispatcher::connect(kafka).await.expect("Kafka")),
            Arc::new(ZkCoordinator::connect(zk).await.expect("ZooKeeper")),
        )
    };
    let (d, co) = remote(kafka.clone(), zk.clone()).await;
    let scheduler = Scheduler::builder(Backends {
        storage: Arc::new(store),
        dispatcher: d,
        coordinator: co,
    })
    .with_config(SchedulerConfig {
        scheduler_id: "kbench".into(),
        ..SchedulerConfig::default()
    })
    .start();
    let mut executors = Vec::new();
    for i in 0..2 {
        let (d, co) = remote(kafka.clone(), zk.clone()).await;
        let mut handlers = HandlerRegistry::empty();
        handlers
            .register("noop", Arc::new(NoopHandler))
            .expect("valid name");
        executors.push(
            Executor::builder(
                ExecutorId::new(format!("kbench-{i}")).expect("valid id"),
                Backends {
                    storage: Arc::new(MemoryStorage::new()),
                    dispatcher: d,
                    coordinator: co,
                },
            )
            .with_capacity(p.capacity)
            .with_handlers(handlers)
            .start()
            .await
            .expect("executor"),
        );
    }
    scheduler.wait_active().await;
    while scheduler
        .engine_stats()
        .await
        .is_none_or(|s| s.executors_online < 2)
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Cluster {
        scheduler,
        executors,
        pool,
        admin: p.mysql.clone(),
        db,
    }
}

impl Cluster {
    async fn stop(self) {
        for e in &self.executors {
            e.shutdown().await;
        }
        self.scheduler.shutdown().await;
        self.pool.close().await;
        if let Ok(mut c) = sqlx::MySqlConnection::connect(&self.admin).await {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE {}", self.db)))
                .execute(&mut c)
                .await;
        }
    }

    async fn wait_idle(&self, jobs: u64) {
        loop {
            let st = self.scheduler.engine_stats().await.expect("active");
            if st.jobs >= jobs && st.scheduled == 0 && st.inserting == 0 && st.active_tasks == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Fire → start lags of succeeded records, ms, sorted.
    async fn lags(&self) -> Vec<f64> {
        let mut v: Vec<f64> = sqlx::query_scalar(
            "SELECT CAST(TIMESTAMPDIFF(MICROSECOND, scheduled_time, start_time) AS DOUBLE) / 1000 \
             FROM job_logs WHERE status = 1",
        )
        .fetch_all(&self.pool)
        .await
        .expect("lags");
        v.sort_by(f64::total_cmp);
        v
    }
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Runs the Kafka benchmark `runs` times and prints the table.
pub async fn kafka(runs: usize, p: KafkaBench) {
    let mut tps = Figure::new(
        format!(
            "{} no-op tasks fired at once: tasks/s (fire → result recorded)",
            p.tasks
        ),
        "tasks/s",
    );
    let mut cpu = Figure::new("CPU of this process per task (scheduler + executors)", "µs");
    let mut p50 = Figure::new(
        format!(
            "fire → start lag p50 ({} jobs every second, {} s)",
            p.latency_jobs, p.latency_secs
        ),
        "ms",
    );
    let mut p99 = Figure::new("fire → start lag p99", "ms");
    let mut max = Figure::new("fire → start lag max", "ms");
    for run in 0..runs {
        // Throughput: N one-shot jobs due at the same instant.
        let c = start(&p).await;
        let at = chrono::DateTime::from_timestamp(Utc::now().timestamp() + 4, 0).expect("time");
        for chunk in (0..p.tasks).collect::<Vec<_>>().chunks(1000) {
            let specs = chunk
                .iter()
                .map(|i| JobSpec::once(format!("t-{i}"), at, "").with_type("noop"))
                .collect();
            c.scheduler.create_jobs(specs).await.expect("jobs");
        }
        while c
            .scheduler
            .engine_stats()
            .await
            .is_none_or(|s| s.jobs < p.tasks as u64)
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let late = Utc::now() > at;
        if let Ok(d) = (at - Utc::now()).to_std() {
            tokio::time::sleep(d).await;
        }
        let (cpu0, t0) = (cpu_secs(), Instant::now());
        c.wait_idle(p.tasks as u64).await;
        let elapsed = t0.elapsed().as_secs_f64();
        let cpu_used = cpu_secs() - cpu0;
        c.stop().await;

        // Latency: a light steady load of every-second jobs.
        let c = start(&p).await;
        let specs = (0..p.latency_jobs)
            .map(|i| JobSpec::cron(format!("l-{i}"), "* * * * * *", "").with_type("noop"))
            .collect();
        c.scheduler.create_jobs(specs).await.expect("jobs");
        tokio::time::sleep(Duration::from_secs(p.latency_secs)).await;
        for page in 1.. {
            let q = jobsched::JobQuery {
                page: jobsched::PageRequest::new(page, 1000).expect("page"),
                ..Default::default()
            };
            let jobs = c.scheduler.list_jobs(&q).await.expect("jobs");
            for j in &jobs.items {
                c.scheduler.delete_job(&j.job_id).await.expect("delete");
            }
            if jobs.items.len() < 1000 {
                break;
            }
        }
        c.wait_idle(0).await;
        let lags = c.lags().await;
        c.stop().await;

        tps.values.push(p.tasks as f64 / elapsed);
        cpu.values.push(cpu_used / p.tasks as f64 * 1e6);
        p50.values.push(pct(&lags, 0.5));
        p99.values.push(pct(&lags, 0.99));
        max.values.push(pct(&lags, 1.0));
        json_line(
            "kafka",
            run,
            serde_json::json!({"tasks": p.tasks, "executors": 2, "capacity": p.capacity, "setup_late": late,
                "latency_jobs": p.latency_jobs, "latency_secs": p.latency_secs}),
            serde_json::json!({"tasks_per_sec": p.tasks as f64 / elapsed, "cpu_us_per_task": cpu_used / p.tasks as f64 * 1e6,
                "lag_p50_ms": pct(&lags, 0.5), "lag_p99_ms": pct(&lags, 0.99), "lag_max_ms": pct(&lags, 1.0),
                "lag_samples": lags.len()}),
        );
    }
    table(
        "End to end through MariaDB, Kafka (Tansu) and ZooKeeper",
        &format!(
            "a scheduler and 2 executors × {} slots, each with its own Kafka clients and ZooKeeper session, \
             in one process; {runs} runs",
            p.capacity
        ),
        &[tps, cpu, p50, p99, max],
    );
}
