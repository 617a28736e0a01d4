//! `/metrics`: every daemon's series in the OpenMetrics text format (which Prometheus reads) — the engine's, the backends' and
//! the executor's from [`jobsched::metrics`], HTTP requests by route and status with their latency, and
//! the process's and the host's resources (`system.rs`).
//!
//! Who may scrape: the bearer token of `--metrics-token-file` (or `JOBSCHED_METRICS_TOKEN`) on every
//! daemon; on a scheduler also any administrator's or read-only user's token (an API token made for
//! Prometheus, say); on an executor a login token (`--jwt-secret-file`). The endpoint is never public.

mod system;

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use jobsched::metrics::Metrics;
use jobsched::prometheus_client::metrics::counter::Counter;
use jobsched::prometheus_client::metrics::family::Family;
use jobsched::prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use jobsched::prometheus_client::registry::Registry;
use subtle::ConstantTimeEq;

use crate::error::DaemonError;

/// The path of the endpoint.
pub const PATH: &str = "/metrics";

/// The variable that may hold the metrics token itself (instead of a file).
pub const TOKEN_VAR: &str = "JOBSCHED_METRICS_TOKEN";

/// The shortest metrics token accepted.
const MIN_TOKEN_CHARS: usize = 32;

type RouteLabels = [(&'static str, String); 3];
type RouteLatency = Family<[(&'static str, String); 1], Histogram, fn() -> Histogram>;

/// A request extension: the request was admitted with the metrics token.
#[derive(Clone, Copy, Debug)]
pub struct Scrape;

/// One daemon's registry and the series only daemons have.
pub struct Telemetry {
    /// The series of the engine, the backends and the executor.
    pub metrics: Metrics,
    registry: Registry,
    requests: Family<RouteLabels, Counter>,
    latency: RouteLatency,
    token: Option<String>,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry")
            .field("token", &self.token.as_ref().map(|_| "***"))
            .finish_non_exhaustive()
    }
}

fn request_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.000_5, 2.0, 15))
}

/// The metrics token: `JOBSCHED_METRICS_TOKEN`, else the file given; `None` without either.
pub fn read_token(file: Option<&std::path::Path>) -> Result<Option<String>, DaemonError> {
    let text = match (std::env::var(TOKEN_VAR), file) {
        (Ok(t), _) => t,
        (Err(_), Some(path)) => std::fs::read_to_string(path)
            .map_err(|e| DaemonError::Config(format!("cannot read {}: {e}", path.display())))?,
        (Err(_), None) => return Ok(None),
    };
    let token = text.trim().to_owned();
    if token.chars().count() < MIN_TOKEN_CHARS || token.chars().any(|c| c.is_whitespace()) {
        return Err(DaemonError::Config(format!(
            "the metrics token must be at least {MIN_TOKEN_CHARS} characters without spaces \
             (make one with `openssl rand -hex 32`)"
        )));
    }
    Ok(Some(token))
}

impl Telemetry {
    /// A registry with every series; disk space is reported for the file system of `data_dir`.
    pub fn new(data_dir: &std::path::Path, token: Option<String>) -> Arc<Telemetry> {
        let metrics = Metrics::new();
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        let requests = Family::<RouteLabels, Counter>::default();
        let latency: RouteLatency = Family::new_with_constructor(request_buckets);
        {
            let r = registry.sub_registry_with_prefix("jobsched");
            r.register(
                "http_requests",
                "HTTP requests answered, by route, method and status",
                requests.clone(),
            );
            r.register(
                "http_request_seconds",
                "Time to answer HTTP requests, by route",
                latency.clone(),
            );
        }
        let started = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let disk = if data_dir.exists() {
            data_dir.to_path_buf()
        } else {
            std::path::PathBuf::from("/")
        };
        registry.register_collector(Box::new(system::SystemCollector { disk, started }));
        Arc::new(Telemetry {
            metrics,
            registry,
            requests,
            latency,
            token,
        })
    }

    /// Whether `headers` carry the metrics token (compared in constant time).
    pub fn is_scrape(&self, headers: &HeaderMap) -> bool {
        let Some(token) = &self.token else {
            return false;
        };
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_at_checked(7))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer "))
            .map_or("", |(_, t)| t.trim());
        bool::from(given.as_bytes().ct_eq(token.as_bytes()))
    }

    /// The answer to a scrape: every series, as text.
    pub fn answer(&self) -> Response {
        let body = jobsched::metrics::encode(&self.registry);
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
            )],
            body,
        )
            .into_response()
    }
}

/// Whether `ping` answers within 2 s.
pub async fn answers<F: std::future::Future<Output = jobsched::Result<()>>>(ping: F) -> bool {
    matches!(
        tokio::time::timeout(std::time::Duration::from_secs(2), ping).await,
        Ok(Ok(()))
    )
}

/// The middleware counting and timing every request by its route (the pattern, such as
/// `/api/jobs/{job_id}`, so that ids do not become series; `unmatched` for unknown paths).
pub async fn track(State(t): State<Arc<Telemetry>>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method: &'static str = match req.method().as_str() {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    };
    let t0 = Instant::now();
    let r = next.run(req).await;
    t.latency
        .get_or_create(&[("route", route.clone())])
        .observe(t0.elapsed().as_secs_f64());
    t.requests
        .get_or_create(&[
            ("route", route),
            ("method", method.to_owned()),
            ("status", r.status().as_u16().to_string()),
        ])
        .inc();
    r
}
