//! The core conformance suite against SQLite files, each behaviour in a fresh database.

mod support;

jobsched::conformance_tests!(storage, Some(support::Opener::new().await));
