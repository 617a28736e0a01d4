//! Applies the store's schema migrations and says where the schema stands:
//! `cargo run -p jobsched-examples --example migrate -- STORE_URL`
//!
//! `STORE_URL` is `mysql://user:password@host:port/database` or `sqlite://path/to/jobsched.db`
//! (default: `$JOBSCHED_STORE`). Idempotent: migrations that ran already are skipped. (The `jobsched`
//! daemon's `migrate` command does the same.)

#![allow(clippy::print_stdout)] // A command-line tool prints what it did.

use jobsched::Error;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let url = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("JOBSCHED_STORE").ok())
        .unwrap_or_default();
    if let Err(e) = migrate(&url).await {
        eprintln!("migrate: {e}");
        std::process::exit(1);
    }
}

async fn migrate(url: &str) -> jobsched::Result<()> {
    let migrator = if url.starts_with("mysql://") || url.starts_with("mariadb://") {
        let store = jobsched_mysql::MysqlConfig::new(url).connect().await?;
        store.close().await;
        &jobsched_mysql::MIGRATOR
    } else if let Some(path) = url.strip_prefix("sqlite://") {
        let store = jobsched_sqlite::SqliteConfig::new(path).connect().await?;
        store.close().await;
        &jobsched_sqlite::MIGRATOR
    } else {
        return Err(Error::invalid(
            "store",
            format!(
                "'{}' is not a store URL: give mysql://user:password@host:port/database or sqlite://path",
                jobsched_mysql::redact_url(url)
            ),
        ));
    };
    let last = migrator
        .iter()
        .last()
        .map(|m| (m.version, m.description.to_string()));
    println!(
        "{}: schema up to date ({} migrations, latest {:?})",
        jobsched_mysql::redact_url(url),
        migrator.iter().count(),
        last
    );
    Ok(())
}
