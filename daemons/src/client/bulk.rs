//! `jobsched jobs export` and `jobsched jobs import`: every job the caller may see as one JSON document of
//! job specs, and back through the bulk route, 10,000 jobs per request.

use std::path::Path;

use jobsched::{Job, JobSpec, Page};
use reqwest::Method;
use serde_json::json;

use super::Client;
use crate::api::{BulkAnswer, MAX_BULK_JOBS};
use crate::error::DaemonError;

impl Client {
    /// Writes `{"jobs": [...]}` to `out` (or standard output).
    pub async fn export(&self, out: Option<&Path>) -> Result<(), DaemonError> {
        #![allow(clippy::print_stdout)] // The export itself, when no file is named.
        let mut specs = Vec::new();
        for page in 1.. {
            let p: Page<Job> = self
                .get(&format!("/api/jobs?page={page}&page_size=1000"))
                .await?;
            let n = p.items.len();
            specs.extend(p.items.iter().map(JobSpec::from));
            if n < 1000 {
                break;
            }
        }
        let text =
            serde_json::to_string_pretty(&json!({ "jobs": specs })).expect("specs serialise");
        match out {
            Some(path) => {
                std::fs::write(path, text + "\n").map_err(|e| {
                    DaemonError::Config(format!("cannot write {}: {e}", path.display()))
                })?;
                eprintln!("exported {} jobs to {}", specs.len(), path.display());
            }
            None => println!("{text}"),
        }
        Ok(())
    }

    /// Reads specs from `file` (`{"jobs": [...]}` or a list) and sends them in requests of 10,000.
    pub async fn import(&self, file: &Path) -> Result<(), DaemonError> {
        let text = std::fs::read(file)
            .map_err(|e| DaemonError::Config(format!("cannot read {}: {e}", file.display())))?;
        let v: serde_json::Value = serde_json::from_slice(&text)
            .map_err(|e| DaemonError::Config(format!("{} is not JSON: {e}", file.display())))?;
        let list = match v {
            serde_json::Value::Array(a) => a,
            serde_json::Value::Object(mut o) => match o.remove("jobs") {
                Some(serde_json::Value::Array(a)) => a,
                _ => {
                    return Err(DaemonError::Config(format!(
                        "{} must be a list of jobs or {{\"jobs\": [...]}}",
                        file.display()
                    )));
                }
            },
            _ => {
                return Err(DaemonError::Config(format!(
                    "{} must be a list of jobs or {{\"jobs\": [...]}}",
                    file.display()
                )));
            }
        };
        let (mut created, mut updated) = (0, 0);
        for (n, chunk) in list.chunks(MAX_BULK_JOBS).enumerate() {
            let a: BulkAnswer = self
                .call(
                    Method::POST,
                    "/api/jobs/bulk",
                    Some(&json!({ "jobs": chunk })),
                )
                .await
                .map_err(|e| {
                    DaemonError::Client(format!(
                        "{e} (in the request of jobs {}–{}; earlier requests were applied)",
                        n * MAX_BULK_JOBS,
                        n * MAX_BULK_JOBS + chunk.len() - 1
                    ))
                })?;
            created += a.created.len();
            updated += a.updated.len();
        }
        self.show(&json!({"created": created, "updated": updated}), |_| {
            format!("created {created} jobs, updated {updated}")
        });
        Ok(())
    }
}
