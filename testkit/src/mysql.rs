//! A database of its own for one test on the MariaDB/MySQL server of `scripts/services.sh`, so tests run
//! in parallel; dropped when the test ends. The server is `JOBSCHED_TEST_MYSQL`
//! (`mysql://user:password@host:port`, no database), by default the services script's.

use sqlx::Connection;

/// The server the tests use.
pub fn server_url() -> String {
    super::env_or(
        "JOBSCHED_TEST_MYSQL",
        "mysql://jobsched:jobsched@127.0.0.1:3306",
    )
}

/// Where `url` points, without its user and password (for messages).
fn host(url: &str) -> &str {
    url.rsplit('@').next().unwrap_or(url)
}

/// One test's database.
#[derive(Debug)]
pub struct TestDb {
    /// The server, without a database (`mysql://user:password@host:port`).
    pub server: String,
    /// The database's name.
    pub name: String,
}

impl TestDb {
    /// A fresh database (`utf8mb4`) named `{prefix}_{tag}`, or `None` (outside CI) when the server is
    /// unreachable.
    pub async fn create(prefix: &str) -> Option<TestDb> {
        Self::create_with_charset(prefix, "utf8mb4").await
    }

    /// A fresh database whose default character set is `charset` (`latin1`, say), or `None` (outside CI)
    /// when the server is unreachable.
    pub async fn create_with_charset(prefix: &str, charset: &str) -> Option<TestDb> {
        let server = server_url();
        let mut c = match sqlx::MySqlConnection::connect(&server).await {
            Ok(c) => c,
            Err(e) => {
                return super::unreachable(format!(
                    "the MySQL test server at {} is unreachable ({e})",
                    host(&server)
                ));
            }
        };
        let name = format!("{prefix}_{}", super::tag());
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "CREATE DATABASE {name} CHARACTER SET {charset}"
        )))
        .execute(&mut c)
        .await
        .expect("create the test database");
        Some(TestDb { server, name })
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("{}/{}", self.server, self.name)
    }

    /// A pool on it, for checks on the raw rows.
    pub async fn pool(&self) -> sqlx::MySqlPool {
        sqlx::MySqlPool::connect(&self.url())
            .await
            .expect("connect to the test database")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let (server, name) = (self.server.clone(), self.name.clone());
        // Drop runs inside the test's runtime: use a thread with a runtime of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
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

#[cfg(test)]
mod tests {
    #[test]
    fn messages_name_the_host_without_credentials() {
        assert_eq!(super::host("mysql://u:secret@h:3306"), "h:3306");
        assert_eq!(super::host("mysql://h:3306"), "mysql://h:3306");
    }
}
