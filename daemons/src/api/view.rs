//! What the API shows of stored objects: secret param values as `"***"` (jobs, execution records, audit
//! details), never the sealed text.

use jobsched::{ExecutionRecord, Job};

use crate::secrets;

/// A job as answered: sealed params shown as `"***"`.
pub fn job_view(mut job: Job) -> Job {
    if job.params.values().any(secrets::is_sealed) {
        job.params = secrets::redact(&job.params);
    }
    job
}

/// An execution record as answered: sealed params shown as `"***"`.
pub fn record_view(mut rec: ExecutionRecord) -> ExecutionRecord {
    if rec.params.values().any(secrets::is_sealed) {
        rec.params = secrets::redact(&rec.params);
    }
    rec
}

/// A job as an audit entry records it (secrets redacted), at the version `version`.
pub fn job_detail(job: &Job, version: u64) -> serde_json::Value {
    let mut job = job_view(job.clone());
    job.version = version;
    serde_json::to_value(job).unwrap_or_default()
}
