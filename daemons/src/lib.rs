//! # jobsched-daemons
//!
//! The `jobsched` binary, as a library: the roles (`standalone`, `scheduler`, `executor`), the HTTP API
//! ([`api::router`]), the configuration ([`config::Config`]), and the command-line client. `main.rs`
//! parses the command line, sets up logging and calls [`server::run`] or a client command; tests call
//! the same functions (a router directly, or `run` on a listener bound to port 0).

pub mod alerts;
pub mod api;
pub mod auth;
pub mod backup;
pub mod cli;
pub mod client;
pub mod config;
pub mod error;
pub mod exclusive;
pub mod handlers;
pub mod metrics;
pub mod secrets;
pub mod server;
pub mod stores;
pub mod tls;
pub mod ui;

pub use error::DaemonError;

/// Resolves when the process is asked to stop: Ctrl-C (SIGINT) or SIGTERM.
pub async fn stop_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!("interrupted (Ctrl-C)"),
        _ = term => tracing::info!("terminated (SIGTERM)"),
    }
}
