//! A database of its own on the MariaDB of `scripts/services.sh` for one test, dropped at the end. An
//! unreachable server fails the test with `CI=true` and skips it otherwise.

use sqlx::Connection;

/// One test's database.
pub struct TestDb {
    /// The server, without a database (`mysql://user:password@host:port`).
    pub server: String,
    /// The database's name.
    pub name: String,
}

impl TestDb {
    /// A fresh database, or `None` (outside CI) when the server is unreachable.
    pub async fn new() -> Option<TestDb> {
        let server = std::env::var("JOBSCHED_TEST_MYSQL")
            .unwrap_or_else(|_| "mysql://jobsched:jobsched@127.0.0.1:3306".to_owned());
        let mut c = match sqlx::MySqlConnection::connect(&server).await {
            Ok(c) => c,
            Err(e) => {
                let msg = format!(
                    "MariaDB at {} is unreachable ({e}); start it with scripts/services.sh start",
                    jobsched_mysql::redact_url(&server)
                );
                if std::env::var("CI").is_ok_and(|v| v == "true") {
                    panic!("{msg}");
                }
                eprintln!("skipped: {msg}");
                return None;
            }
        };
        let name = format!("jstest_{:012x}", fastrand::u64(..) >> 16);
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut c)
            .await
            .unwrap();
        Some(TestDb { server, name })
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("{}/{}", self.server, self.name)
    }

    /// A pool on it, for checks on the raw rows.
    pub async fn pool(&self) -> sqlx::MySqlPool {
        sqlx::MySqlPool::connect(&self.url()).await.unwrap()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let (server, name) = (self.server.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok(mut c) = sqlx::MySqlConnection::connect(&server).await {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name}"
                    )))
                    .execute(&mut c)
                    .await;
                }
            })
        })
        .join();
    }
}
