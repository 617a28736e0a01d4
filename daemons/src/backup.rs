//! Backups, restores and key rotation (`jobsched backup`, `jobsched restore`, `jobsched secrets rotate`).
//!
//! * **SQLite**: an online, transactionally consistent copy of the database file (`VACUUM INTO`, SQLite's
//!   own way to snapshot a live database into a new file — the daemon keeps running); restore puts the
//!   copy in place of a store that does not exist yet or holds no data.
//! * **MySQL**: a logical export of jobsched's tables read in one consistent snapshot (`START TRANSACTION
//!   WITH CONSISTENT SNAPSHOT`): jobs, executors, settings, fences, counters, users, tokens and ended
//!   sessions, plus with `--with-history` the execution history and the audit log. One JSON line per row,
//!   every value as text; restore loads it into an empty database at the same schema version in one
//!   transaction.
//!
//! Secret params stay encrypted in both (their keyring is not part of a backup: keep it apart).

use std::io::{BufRead, Write};
use std::path::Path;
use std::sync::Arc;

use chrono::Utc;
use jobsched::storage::{JobWrite, Storage};
use jobsched::{AuditEntry, AuditOutcome, JobQuery, PageRequest};
use serde::{Deserialize, Serialize};
use sqlx::{AssertSqlSafe, Connection, Row};

use crate::error::DaemonError;
use crate::secrets::{KEYRING_FILE, Keyring};

/// The tables of a MySQL export, in the order they are loaded; the last two only with history.
const TABLES: &[&str] = &[
    "jobsched_counters",
    "jobsched_settings",
    "jobsched_fences",
    "jobs",
    "executors",
    "jobsched_users",
    "jobsched_tokens",
    "jobsched_ended_sessions",
    "job_logs",
    "jobsched_audit",
];
const HISTORY_TABLES: &[&str] = &["job_logs", "jobsched_audit"];
/// The tables that must be empty for a restore (the migrations fill the others with defaults).
const DATA_TABLES: &[&str] = &[
    "jobs",
    "job_logs",
    "executors",
    "jobsched_users",
    "jobsched_tokens",
    "jobsched_audit",
];

/// The first line of a logical backup.
#[derive(Debug, Serialize, Deserialize)]
struct Header {
    format: String,
    store: String,
    /// The newest migration applied to the exported database.
    schema: i64,
    created: chrono::DateTime<Utc>,
    history: bool,
}

/// The line that starts a table's rows.
#[derive(Debug, Serialize, Deserialize)]
struct TableStart {
    table: String,
    columns: Vec<String>,
}

const FORMAT: &str = "jobsched-backup-v1";

fn fail(what: impl std::fmt::Display) -> DaemonError {
    DaemonError::Config(what.to_string())
}

fn sqlite_path(url: &str) -> Option<&Path> {
    url.strip_prefix("sqlite://").map(Path::new)
}

/// Creates the backup file, readable by its owner only (a backup holds password hashes and the signing
/// key of login tokens); refused if it exists.
fn new_private_file(out: &Path) -> Result<std::fs::File, DaemonError> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(out)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => fail(format!(
                "{} exists: give a new file (a backup never overwrites one)",
                out.display()
            )),
            _ => fail(format!("cannot create {}: {e}", out.display())),
        })
}

/// `jobsched backup --store URL --out FILE [--with-history]`.
#[allow(clippy::print_stdout)] // What was written.
pub async fn backup(url: &str, out: &Path, with_history: bool) -> Result<(), DaemonError> {
    // Made first, empty and private: SQLite writes a backup into an empty file and keeps its mode.
    let file = new_private_file(out)?;
    if let Some(path) = sqlite_path(url) {
        drop(file);
        let store = jobsched_sqlite::SqliteConfig::new(path).connect().await?;
        sqlx::query("VACUUM INTO ?")
            .bind(out.to_string_lossy().into_owned())
            .execute(store.pool())
            .await
            .map_err(|e| fail(format!("SQLite backup into {}: {e}", out.display())))?;
        store.close().await;
        println!(
            "backed up {} to {} (SQLite database file)",
            path.display(),
            out.display()
        );
        return Ok(());
    }
    let rows = match export_mysql(url, file, with_history).await {
        Ok(rows) => rows,
        Err(e) => {
            let _ = std::fs::remove_file(out);
            return Err(e);
        }
    };
    println!(
        "backed up {} to {} ({rows} rows{})",
        jobsched_mysql::redact_url(url),
        out.display(),
        if with_history { ", with history" } else { "" }
    );
    Ok(())
}

async fn schema_version(c: &mut sqlx::MySqlConnection) -> Result<i64, DaemonError> {
    let (v,): (i64,) = sqlx::query_as("SELECT COALESCE(MAX(version), 0) FROM _sqlx_migrations")
        .fetch_one(&mut *c)
        .await
        .map_err(|e| fail(format!("reading the schema version: {e}")))?;
    Ok(v)
}

async fn columns(c: &mut sqlx::MySqlConnection, table: &str) -> Result<Vec<String>, DaemonError> {
    let cols: Vec<(String,)> = sqlx::query_as(
        "SELECT CAST(column_name AS CHAR) FROM information_schema.columns \
         WHERE table_schema = DATABASE() AND table_name = ? ORDER BY ordinal_position",
    )
    .bind(table)
    .fetch_all(&mut *c)
    .await
    .map_err(|e| fail(format!("reading the columns of {table}: {e}")))?;
    Ok(cols.into_iter().map(|(c,)| c).collect())
}

async fn export_mysql(
    url: &str,
    file: std::fs::File,
    with_history: bool,
) -> Result<u64, DaemonError> {
    // Migrated first, so the export is of the schema this binary knows.
    jobsched_mysql::MysqlConfig::new(url)
        .connect()
        .await?
        .close()
        .await;
    let mut c = sqlx::MySqlConnection::connect(url)
        .await
        .map_err(|e| fail(format!("{}: {e}", jobsched_mysql::redact_url(url))))?;
    let run = |sql: &'static str| sqlx::raw_sql(AssertSqlSafe(sql));
    run("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        .execute(&mut c)
        .await
        .map_err(fail)?;
    run("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
        .execute(&mut c)
        .await
        .map_err(fail)?;
    let mut w = std::io::BufWriter::new(file);
    let header = Header {
        format: FORMAT.into(),
        store: "mysql".into(),
        schema: schema_version(&mut c).await?,
        created: Utc::now(),
        history: with_history,
    };
    fn line<T: Serialize>(w: &mut impl Write, v: &T) -> Result<(), DaemonError> {
        serde_json::to_writer(&mut *w, v).map_err(fail)?;
        w.write_all(b"\n").map_err(fail)
    }
    line(&mut w, &header)?;
    let mut rows = 0u64;
    for table in TABLES {
        if !with_history && HISTORY_TABLES.contains(table) {
            continue;
        }
        let cols = columns(&mut c, table).await?;
        line(
            &mut w,
            &TableStart {
                table: (*table).into(),
                columns: cols.clone(),
            },
        )?;
        let select = cols
            .iter()
            .map(|c| format!("CAST(`{c}` AS CHAR)"))
            .collect::<Vec<_>>()
            .join(", ");
        let all: Vec<sqlx::mysql::MySqlRow> =
            sqlx::query(AssertSqlSafe(format!("SELECT {select} FROM `{table}`")))
                .fetch_all(&mut c)
                .await
                .map_err(|e| fail(format!("reading {table}: {e}")))?;
        for r in all {
            let values: Vec<Option<String>> = (0..cols.len())
                .map(|i| r.try_get::<Option<String>, _>(i))
                .collect::<Result<_, _>>()
                .map_err(|e| fail(format!("reading {table}: {e}")))?;
            line(&mut w, &values)?;
            rows += 1;
        }
    }
    run("COMMIT").execute(&mut c).await.map_err(fail)?;
    w.flush().map_err(fail)?;
    w.get_ref().sync_all().map_err(fail)?;
    Ok(rows)
}

/// `jobsched restore --store URL --from FILE`.
#[allow(clippy::print_stdout)] // What was loaded.
pub async fn restore(url: &str, from: &Path) -> Result<(), DaemonError> {
    if let Some(path) = sqlite_path(url) {
        return restore_sqlite(path, from).await;
    }
    let rows = restore_mysql(url, from).await?;
    println!(
        "restored {rows} rows from {} into {}",
        from.display(),
        jobsched_mysql::redact_url(url)
    );
    Ok(())
}

#[allow(clippy::print_stdout)] // What was restored.
async fn restore_sqlite(path: &Path, from: &Path) -> Result<(), DaemonError> {
    let bytes =
        std::fs::read(from).map_err(|e| fail(format!("cannot read {}: {e}", from.display())))?;
    if !bytes.starts_with(b"SQLite format 3\0") {
        return Err(fail(format!(
            "{} is not an SQLite backup (a MySQL backup restores into a MySQL store)",
            from.display()
        )));
    }
    if path.exists() {
        let store: Arc<dyn Storage> =
            Arc::new(jobsched_sqlite::SqliteConfig::new(path).connect().await?);
        refuse_unless_empty(store.as_ref(), &path.display().to_string()).await?;
        drop(store);
        for suffix in ["", "-wal", "-shm"] {
            let p = format!("{}{suffix}", path.display());
            let _ = std::fs::remove_file(p);
        }
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        crate::stores::private_dir(dir)?;
    }
    {
        use std::io::Write;
        let mut f = new_private_file(path)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
    }
    // Opening migrates a backup made by an older version.
    jobsched_sqlite::SqliteConfig::new(path)
        .connect()
        .await?
        .close()
        .await;
    println!("restored {} into {}", from.display(), path.display());
    Ok(())
}

async fn refuse_unless_empty(store: &dyn Storage, name: &str) -> Result<(), DaemonError> {
    let one = PageRequest::new(1, 1).expect("valid");
    let jobs = store
        .list_jobs(&JobQuery {
            page: one,
            ..JobQuery::default()
        })
        .await?
        .total;
    let users = store.list_users(one).await?.total;
    let history = store
        .list_executions(&jobsched::ExecutionQuery {
            page: one,
            ..Default::default()
        })
        .await?
        .total;
    let audit = store
        .list_audit(&jobsched::AuditQuery {
            page: one,
            ..Default::default()
        })
        .await?
        .total;
    if jobs + users + history + audit > 0 {
        return Err(fail(format!(
            "{name} holds {jobs} jobs, {users} users, {history} execution records and {audit} audit \
             entries: a restore goes into an empty store"
        )));
    }
    Ok(())
}

async fn restore_mysql(url: &str, from: &Path) -> Result<u64, DaemonError> {
    jobsched_mysql::MysqlConfig::new(url)
        .connect()
        .await?
        .close()
        .await;
    let file = std::fs::File::open(from)
        .map_err(|e| fail(format!("cannot read {}: {e}", from.display())))?;
    let mut lines = std::io::BufReader::new(file).lines();
    let bad = |why: &str| {
        fail(format!(
            "{} is not a jobsched backup: {why}",
            from.display()
        ))
    };
    let first = lines.next().ok_or_else(|| bad("it is empty"))??;
    let header: Header = serde_json::from_str(&first).map_err(|_| {
        bad("its first line is not a backup header (an SQLite backup restores into sqlite://…)")
    })?;
    if header.format != FORMAT || header.store != "mysql" {
        return Err(bad(&format!(
            "format {} of {}",
            header.format, header.store
        )));
    }
    let mut c = sqlx::MySqlConnection::connect(url)
        .await
        .map_err(|e| fail(format!("{}: {e}", jobsched_mysql::redact_url(url))))?;
    let schema = schema_version(&mut c).await?;
    if schema != header.schema {
        return Err(fail(format!(
            "the backup is of schema {} and this store of schema {schema}: restore with the jobsched \
             version that made the backup",
            header.schema
        )));
    }
    for t in DATA_TABLES {
        let (n,): (i64,) = sqlx::query_as(AssertSqlSafe(format!("SELECT COUNT(*) FROM `{t}`")))
            .fetch_one(&mut c)
            .await
            .map_err(fail)?;
        if n > 0 {
            return Err(fail(format!(
                "the store's table {t} holds {n} rows: a restore goes into an empty store"
            )));
        }
    }
    let mut tx = c.begin().await.map_err(fail)?;
    let mut rows = 0u64;
    let mut table: Option<TableStart> = None;
    let mut batch: Vec<Vec<Option<String>>> = Vec::new();
    async fn flush(
        tx: &mut sqlx::MySqlConnection,
        t: &TableStart,
        batch: &mut Vec<Vec<Option<String>>>,
    ) -> Result<(), DaemonError> {
        if batch.is_empty() {
            return Ok(());
        }
        let cols = t
            .columns
            .iter()
            .map(|c| format!("`{c}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut qb =
            sqlx::QueryBuilder::<sqlx::MySql>::new(format!("INSERT INTO `{}` ({cols}) ", t.table));
        qb.push_values(batch.drain(..), |mut b, row| {
            for v in row {
                b.push_bind(v);
            }
        });
        qb.build()
            .execute(&mut *tx)
            .await
            .map_err(|e| fail(format!("loading {}: {e}", t.table)))?;
        Ok(())
    }
    for line in lines {
        let line = line?;
        if let Ok(start) = serde_json::from_str::<TableStart>(&line) {
            if let Some(t) = &table {
                flush(&mut tx, t, &mut batch).await?;
            }
            if !TABLES.contains(&start.table.as_str()) {
                return Err(bad(&format!("it has an unknown table {}", start.table)));
            }
            // Column names go into the INSERT: only the table's own are taken.
            let known = columns(&mut tx, &start.table).await?;
            if let Some(c) = start.columns.iter().find(|c| !known.contains(c)) {
                return Err(bad(&format!(
                    "table {} has no column {c:?} in this store",
                    start.table
                )));
            }
            sqlx::query(AssertSqlSafe(format!("DELETE FROM `{}`", start.table)))
                .execute(&mut *tx)
                .await
                .map_err(fail)?;
            table = Some(start);
            continue;
        }
        let t = table
            .as_ref()
            .ok_or_else(|| bad("a row before any table"))?;
        let values: Vec<Option<String>> = serde_json::from_str(&line)
            .map_err(|e| bad(&format!("a row of {} is not a list: {e}", t.table)))?;
        if values.len() != t.columns.len() {
            return Err(bad(&format!("a row of {} has the wrong width", t.table)));
        }
        batch.push(values);
        rows += 1;
        if batch.len() >= 500 {
            flush(&mut tx, t, &mut batch).await?;
        }
    }
    if let Some(t) = &table {
        flush(&mut tx, t, &mut batch).await?;
    }
    tx.commit().await.map_err(fail)?;
    Ok(rows)
}

/// `jobsched secrets init`: a new keyring file with one key.
#[allow(clippy::print_stdout)] // What was made.
pub fn init_secrets(path: &Path) -> Result<(), DaemonError> {
    if path.exists() {
        return Err(fail(format!(
            "{} exists: a keyring is made once (add keys with `jobsched secrets rotate`)",
            path.display()
        )));
    }
    let ring = Keyring::open_or_create(path).map_err(fail)?;
    println!(
        "created the keyring {} (key {}); give the same file to every scheduler and executor",
        path.display(),
        ring.current_id()
    );
    Ok(())
}

/// `jobsched keygen`: a new cluster key, printed or written to a new private file.
#[allow(clippy::print_stdout)] // The key, or where it went.
pub fn keygen(out: Option<&Path>) -> Result<(), DaemonError> {
    let text = jobsched_kafka::ClusterKey::generate().encode();
    match out {
        None => print!("{text}"),
        Some(path) => {
            crate::secrets::write_private(path, &text, crate::secrets::Write::New)
                .map_err(|e| fail(format!("cannot create {}: {e}", path.display())))?;
            println!(
                "wrote a new cluster key to {}; give the same file to every scheduler and executor \
                 (--cluster-key-file)",
                path.display()
            );
        }
    }
    Ok(())
}

/// `jobsched secrets rotate`: a new key in the keyring, and every job's secret params sealed with it.
#[allow(clippy::print_stdout)] // What was done.
pub async fn rotate_secrets(
    store: Option<&str>,
    keyring: Option<&Path>,
    data_dir: Option<&Path>,
) -> Result<(), DaemonError> {
    let dir = data_dir.unwrap_or_else(|| Path::new("jobsched-data"));
    let keyring_path = keyring.map_or_else(|| dir.join(KEYRING_FILE), Path::to_owned);
    let url = store.map_or_else(
        || format!("sqlite://{}", crate::stores::data_dir_file(dir).display()),
        str::to_owned,
    );
    let ring = Keyring::open(&keyring_path).map_err(fail)?;
    let storage = crate::stores::open(&url).await?;
    let id = ring.add_key().map_err(fail)?;
    let mut resealed = Vec::new();
    for page in 1.. {
        let p = storage
            .list_jobs(&JobQuery {
                page: PageRequest::new(page, 1000)?,
                ..JobQuery::default()
            })
            .await?;
        for mut job in p.items.iter().cloned() {
            let id = job.job_id.clone();
            if ring.reseal(id.as_str(), &mut job.params).map_err(fail)? {
                resealed.push(job);
            }
        }
        if p.items.len() < 1000 {
            break;
        }
    }
    for chunk in resealed.chunks(1000) {
        let writes: Vec<JobWrite<'_>> = chunk.iter().map(JobWrite::Update).collect();
        let audit = AuditEntry {
            id: 0,
            time: Utc::now(),
            user: "jobsched".into(),
            role: None,
            client: "local".into(),
            action: "secrets.rotate".into(),
            target: "jobs".into(),
            outcome: AuditOutcome::Success,
            message: format!("secret params sealed again with key {id}"),
            detail: serde_json::json!({
                "key": id,
                "jobs": chunk.iter().map(|j| j.job_id.to_string()).collect::<Vec<_>>()
            }),
        };
        storage.write_jobs(&writes, &[audit]).await?;
    }
    println!(
        "added key {id} to {}; sealed the secret params of {} jobs with it. Give every scheduler and \
         executor this keyring file (they read it again when it changes); older keys stay for what \
         they sealed before.",
        keyring_path.display(),
        resealed.len()
    );
    Ok(())
}
