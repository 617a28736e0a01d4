//! A database of its own on the MariaDB of `scripts/services.sh` for one test, dropped at the end (the
//! test kit's); an unreachable server fails the test with `CI=true` and skips it otherwise.

pub use jobsched_testkit::mysql::TestDb;
