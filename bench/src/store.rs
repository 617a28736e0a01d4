//! The store benchmark: execution records written per second through a SQL store (one record per call,
//! and batches), next to a plain batched `INSERT` of the same rows on the same server, and the result
//! updates that follow them.

use std::sync::Arc;
use std::time::Instant;

use jobsched::storage::{ExecutionUpdate, Expect, Fence, Storage};
use jobsched::{ExecutionRecord, ExecutorId, JobSpec, TaskId, TaskStatus, Trigger};
use jobsched_sql::{EXEC_INSERT_COLUMNS, ExecRow, push_exec_values};
use sqlx::{Connection, Database, Executor, IntoArguments, Pool, QueryBuilder};

use crate::measure::{Figure, json_line, table};

/// Where the store benchmark writes.
#[derive(Clone, Debug)]
pub enum Target {
    /// A MySQL/MariaDB server (`mysql://user:password@host:port`): each run gets a fresh database.
    Mysql(String),
    /// A directory: each run gets a fresh SQLite file in it.
    Sqlite(std::path::PathBuf),
}

/// Parameters of one store benchmark.
#[derive(Clone, Debug)]
pub struct StoreBench {
    pub target: Target,
    /// Records per batched figure.
    pub records: usize,
    /// Records per one-at-a-time figure.
    pub single_records: usize,
    /// Records per call (and rows per plain INSERT statement).
    pub batch: usize,
    /// Concurrent writers (connections).
    pub writers: usize,
}

fn records(n: usize, tag: usize) -> Vec<ExecutionRecord> {
    let job = JobSpec::cron(format!("bench-{tag}"), "* * * * * *", "echo bench")
        .build(chrono::Utc::now())
        .expect("valid job");
    let t0 = jobsched::clock::trunc_ms(chrono::Utc::now());
    (0..n)
        .map(|i| {
            let at = t0 + chrono::TimeDelta::milliseconds(i as i64);
            ExecutionRecord::first_attempt(&job, TaskId::generate(), Trigger::Schedule, at, at)
        })
        .collect()
}

/// Splits `items` over `writers` concurrent tasks, each writing `batch` at a time with `write`; returns
/// items per second.
async fn drive<T, F, Fut>(items: Vec<T>, writers: usize, batch: usize, write: F) -> f64
where
    T: Send + 'static,
    F: Fn(Vec<T>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send,
{
    let n = items.len();
    let mut per_writer: Vec<Vec<Vec<T>>> = (0..writers).map(|_| Vec::new()).collect();
    let mut items = items.into_iter();
    let mut w = 0;
    loop {
        let chunk: Vec<T> = items.by_ref().take(batch).collect();
        if chunk.is_empty() {
            break;
        }
        per_writer[w % writers].push(chunk);
        w += 1;
    }
    let write = Arc::new(write);
    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for chunks in per_writer {
        let write = write.clone();
        set.spawn(async move {
            for c in chunks {
                write(c).await;
            }
        });
    }
    set.join_all().await;
    n as f64 / start.elapsed().as_secs_f64()
}

/// Plain multi-row INSERTs of the records' rows, autocommit, `writers` connections.
async fn plain_insert<DB>(
    pool: Pool<DB>,
    recs: Vec<ExecutionRecord>,
    writers: usize,
    batch: usize,
) -> f64
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'p> &'p Pool<DB>: Executor<'p, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    String: jobsched_sql::Bind<DB>,
    Option<String>: jobsched_sql::Bind<DB>,
    i64: jobsched_sql::Bind<DB>,
    i32: jobsched_sql::Bind<DB>,
    Option<i32>: jobsched_sql::Bind<DB>,
    i8: jobsched_sql::Bind<DB>,
    chrono::NaiveDateTime: jobsched_sql::Bind<DB>,
    Option<chrono::NaiveDateTime>: jobsched_sql::Bind<DB>,
{
    let rows: Vec<ExecRow> = recs.iter().map(ExecRow::from_record).collect();
    drive(rows, writers, batch, move |chunk: Vec<ExecRow>| {
        let pool = pool.clone();
        async move {
            let mut qb =
                QueryBuilder::<DB>::new(format!("INSERT INTO job_logs ({EXEC_INSERT_COLUMNS}) "));
            qb.push_values(chunk, |mut v, r| push_exec_values(&mut v, r));
            qb.build().execute(&pool).await.expect("plain insert");
        }
    })
    .await
}

async fn narrow_insert<DB>(pool: Pool<DB>, n: usize, writers: usize, batch: usize) -> f64
where
    DB: Database,
    for<'p> &'p Pool<DB>: Executor<'p, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    String: jobsched_sql::Bind<DB>,
    i32: jobsched_sql::Bind<DB>,
{
    drive(
        (0..n as i32).collect(),
        writers,
        batch,
        move |chunk: Vec<i32>| {
            let pool = pool.clone();
            async move {
                let mut qb = QueryBuilder::<DB>::new("INSERT INTO narrow (a, b, c) ");
                qb.push_values(chunk, |mut v, i| {
                    v.push_bind(i)
                        .push_bind(i / 2)
                        .push_bind(format!("row {i}"));
                });
                qb.build().execute(&pool).await.expect("narrow insert");
            }
        },
    )
    .await
}

async fn store_insert(
    store: Arc<dyn Storage>,
    recs: Vec<ExecutionRecord>,
    writers: usize,
    batch: usize,
    fence: Option<Fence>,
) -> f64 {
    drive(recs, writers, batch, move |chunk: Vec<ExecutionRecord>| {
        let (store, fence) = (store.clone(), fence.clone());
        async move {
            store
                .insert_executions(&chunk, fence.as_ref())
                .await
                .expect("store insert");
        }
    })
    .await
}

async fn store_finish(
    store: Arc<dyn Storage>,
    recs: &[ExecutionRecord],
    writers: usize,
    batch: usize,
) -> f64 {
    let exec = ExecutorId::new("bench-exec").expect("valid id");
    let now = chrono::Utc::now();
    let updates: Vec<ExecutionUpdate> = recs
        .iter()
        .map(|r| {
            let mut u =
                ExecutionUpdate::new(r.task_id.clone(), 1, Expect::Active, TaskStatus::Succeeded);
            u.executor = Some((exec.clone(), 1));
            u.start_time = Some(now);
            u.end_time = Some(now);
            u.output = Some("ok\n".into());
            u.error = Some(String::new());
            u.exit_code = Some(0);
            u
        })
        .collect();
    drive(
        updates,
        writers,
        batch,
        move |chunk: Vec<ExecutionUpdate>| {
            let store = store.clone();
            async move {
                store
                    .update_executions(&chunk, None)
                    .await
                    .expect("store update");
            }
        },
    )
    .await
}

/// A fresh, migrated store for one figure.
pub(crate) enum Fresh {
    Mysql {
        store: jobsched_mysql::MysqlStore,
        admin: String,
        db: String,
    },
    Sqlite {
        store: jobsched_sqlite::SqliteStore,
        dir: std::path::PathBuf,
    },
}

impl Fresh {
    pub(crate) async fn open(target: &Target, writers: usize, batch: usize) -> Fresh {
        let name = format!("jobsched_bench_{:08x}", fastrand::u32(..));
        match target {
            Target::Mysql(server) => {
                let mut c = sqlx::MySqlConnection::connect(server)
                    .await
                    .expect("MySQL server");
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut c)
                    .await
                    .expect("create the bench database");
                let store = jobsched_mysql::MysqlConfig::new(format!("{server}/{name}"))
                    .with_max_connections(writers as u32 + 2)
                    .with_max_batch_rows(batch.max(1))
                    .connect()
                    .await
                    .expect("open the store");
                Fresh::Mysql {
                    store,
                    admin: server.clone(),
                    db: name,
                }
            }
            Target::Sqlite(dir) => {
                let dir = dir.join(name);
                let store = jobsched_sqlite::SqliteConfig::in_dir(&dir)
                    .with_max_batch_rows(batch.clamp(1, 1000))
                    .connect()
                    .await
                    .expect("open the store");
                Fresh::Sqlite { store, dir }
            }
        }
    }

    pub(crate) fn storage(&self) -> Arc<dyn Storage> {
        match self {
            Fresh::Mysql { store, .. } => Arc::new(store.clone()),
            Fresh::Sqlite { store, .. } => Arc::new(store.clone()),
        }
    }

    async fn plain(&self, recs: Vec<ExecutionRecord>, writers: usize, batch: usize) -> f64 {
        match self {
            Fresh::Mysql { store, .. } => {
                plain_insert(store.pool().clone(), recs, writers, batch).await
            }
            Fresh::Sqlite { store, .. } => {
                plain_insert(store.pool().clone(), recs, writers, batch).await
            }
        }
    }

    /// Plain multi-row INSERTs of narrow rows (an id and three small columns, one index): what the server
    /// takes when rows cost nothing, for reference.
    async fn narrow(&self, n: usize, writers: usize, batch: usize) -> f64 {
        let create = "CREATE TABLE narrow (id INTEGER PRIMARY KEY AUTO_INCREMENT, a INT NOT NULL, \
                      b INT NOT NULL, c VARCHAR(16) NOT NULL)";
        match self {
            Fresh::Mysql { store, .. } => {
                sqlx::query(create)
                    .execute(store.pool())
                    .await
                    .expect("narrow table");
                narrow_insert(store.pool().clone(), n, writers, batch).await
            }
            Fresh::Sqlite { store, .. } => {
                sqlx::query(
                    "CREATE TABLE narrow (id INTEGER PRIMARY KEY AUTOINCREMENT, a INT NOT NULL, \
                             b INT NOT NULL, c TEXT NOT NULL)",
                )
                .execute(store.pool())
                .await
                .expect("narrow table");
                narrow_insert(store.pool().clone(), n, writers, batch).await
            }
        }
    }

    pub(crate) async fn remove(self) {
        match self {
            Fresh::Mysql { store, admin, db } => {
                store.close().await;
                let mut c = sqlx::MySqlConnection::connect(&admin)
                    .await
                    .expect("MySQL server");
                let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE {db}")))
                    .execute(&mut c)
                    .await;
            }
            Fresh::Sqlite { store, dir } => {
                store.close().await;
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }
}

/// Runs the store benchmark `runs` times and prints the table.
pub async fn store(runs: usize, p: StoreBench) {
    let backend = match &p.target {
        Target::Mysql(_) => "mysql",
        Target::Sqlite(_) => "sqlite",
    };
    let b = p.batch;
    let mut plain = Figure::new(
        format!("plain multi-row INSERT, {b} rows per statement"),
        "rows/s",
    );
    let mut batched = Figure::new(
        format!("store insert_executions, {b} per call"),
        "records/s",
    );
    let mut fenced = Figure::new(
        format!("store insert_executions, {b} per call, fenced"),
        "records/s",
    );
    let mut updated = Figure::new(
        format!("store update_executions (results), {b} per call"),
        "records/s",
    );
    let mut plain_one = Figure::new("plain single-row INSERT (autocommit)", "rows/s");
    let mut single = Figure::new("store insert_executions, 1 per call", "records/s");
    let mut ratio = Figure::new("store batched / plain batched", "%");
    let mut narrow = Figure::new(
        format!("for reference: plain INSERT of narrow rows, {b} per statement"),
        "rows/s",
    );
    for run in 0..runs {
        let f = Fresh::open(&p.target, p.writers, b).await;
        let plain_rate = f.plain(records(p.records, 0), p.writers, b).await;
        let narrow_rate = f.narrow(p.records, p.writers, b).await;
        f.remove().await;

        let f = Fresh::open(&p.target, p.writers, b).await;
        let recs = records(p.records, 1);
        let batched_rate = store_insert(f.storage(), recs.clone(), p.writers, b, None).await;
        let update_rate = store_finish(f.storage(), &recs, p.writers, b).await;
        let fence = Fence {
            scope: "bench".into(),
            token: 1,
        };
        let fenced_rate = store_insert(
            f.storage(),
            records(p.records, 2),
            p.writers,
            b,
            Some(fence),
        )
        .await;
        f.remove().await;

        let f = Fresh::open(&p.target, p.writers, b).await;
        let plain_one_rate = f.plain(records(p.single_records, 3), p.writers, 1).await;
        let single_rate = store_insert(
            f.storage(),
            records(p.single_records, 4),
            p.writers,
            1,
            None,
        )
        .await;
        f.remove().await;

        plain.values.push(plain_rate);
        batched.values.push(batched_rate);
        fenced.values.push(fenced_rate);
        updated.values.push(update_rate);
        plain_one.values.push(plain_one_rate);
        single.values.push(single_rate);
        ratio.values.push(100.0 * batched_rate / plain_rate);
        narrow.values.push(narrow_rate);
        json_line(
            "store",
            run,
            serde_json::json!({"backend": backend, "records": p.records, "single_records": p.single_records,
                "batch": b, "writers": p.writers}),
            serde_json::json!({"plain_batched_rows_per_sec": plain_rate, "store_batched_per_sec": batched_rate,
                "store_fenced_per_sec": fenced_rate, "store_update_per_sec": update_rate,
                "plain_single_rows_per_sec": plain_one_rate, "store_single_per_sec": single_rate,
                "narrow_rows_per_sec": narrow_rate}),
        );
    }
    table(
        &format!("Store throughput: {backend}"),
        &format!(
            "{} records per batched figure, {} per one-at-a-time figure, {} concurrent writers, {runs} runs; \
             a fresh database per figure.",
            p.records, p.single_records, p.writers
        ),
        &[
            plain, batched, fenced, updated, ratio, plain_one, single, narrow,
        ],
    );
}
