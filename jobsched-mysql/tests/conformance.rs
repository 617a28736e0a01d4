//! The core conformance suite against a real MariaDB/MySQL server, each behaviour in a fresh database.

mod support;

jobsched::conformance_tests!(storage, support::Opener::new().await);
