//! Behaviours every SQL store must show beyond the core conformance suite (feature `testing`): bad input
//! and oversized output, and durability when the writing process is killed with SIGKILL mid-load. Plain
//! async functions, like `jobsched::testing`; each store's tests call them against its real database.

use std::future::Future;
use std::process::Stdio;
use std::sync::Arc;

use chrono::TimeDelta;
use jobsched::storage::{ExecutionUpdate, Expect, InsertOutcome, Storage};
use jobsched::testing::{OpenStorage, sample_job, sample_record, t0};
use jobsched::{Error, ExecutionQuery, JobId, JobQuery, PageRequest, TaskId, TaskStatus, Trigger};
use tokio::io::AsyncBufReadExt;

/// An opener that hands out one store (for behaviours that need a store opened with special settings).
pub struct OneStore(pub Arc<dyn Storage>);

#[async_trait::async_trait]
impl OpenStorage for OneStore {
    async fn open(&self) -> Arc<dyn Storage> {
        self.0.clone()
    }
}

/// Output beyond the store's cap is stored truncated, keeping its tail after a marker; output within the
/// cap, NUL bytes and control characters included, is stored verbatim.
pub async fn output_is_capped_with_a_marker(open: &dyn OpenStorage, max_output_bytes: usize) {
    let s = open.open().await;
    let job = sample_job("capped-output");
    let rec = sample_record(&job, Trigger::Manual, t0());
    s.insert_executions(std::slice::from_ref(&rec), None)
        .await
        .unwrap();
    let mut u = ExecutionUpdate::new(rec.task_id.clone(), 1, Expect::Active, TaskStatus::Failed);
    let huge = format!("{}THE END", "🚀 line\n".repeat(max_output_bytes / 4));
    let odd = "nul \0 byte, bell \u{7}, cr \r, tab \t, 'quote' \"dq\" \\ 💥".to_owned();
    u.output = Some(huge.clone());
    u.error = Some(odd.clone());
    u.end_time = Some(t0());
    s.update_executions(&[u], None).await.unwrap();
    let back = s.get_execution(&rec.task_id, 1).await.unwrap();
    assert!(
        back.output.len() <= max_output_bytes,
        "output of {} bytes stored beyond the cap of {max_output_bytes}",
        back.output.len()
    );
    assert!(
        back.output.starts_with("[jobsched: ")
            && back.output.contains(" earlier bytes truncated]\n"),
        "a truncated output starts with the marker: {:?}",
        &back.output[..80.min(back.output.len())]
    );
    assert!(back.output.ends_with("THE END"), "the tail is kept");
    assert_eq!(back.error, odd, "text within the cap is stored verbatim");
}

/// Names and commands with quotes, backslashes, emoji, SQL and control characters are stored verbatim;
/// values a store cannot hold (a NUL byte where its column refuses one, a name beyond its column) are
/// refused with `Invalid` — never stored altered, never a crash, and a refused batch stores nothing.
pub async fn odd_text_is_verbatim_or_refused(open: &dyn OpenStorage) {
    let s = open.open().await;
    let mut job = sample_job("odd-text");
    job.name = "Robert'); DROP TABLE jobs;-- \\ \" `tick` 🚀 ünïcödé".into();
    job.command = "echo '\\'' \"$HOME\" `id` 💥 \\\\ \u{1}".into();
    let stored = s.create_jobs(std::slice::from_ref(&job)).await.unwrap();
    assert_eq!(stored[0].name, job.name);
    let back = s.get_job(&job.job_id).await.unwrap();
    assert_eq!((back.name, back.command), (job.name, job.command));

    for (what, mut bad) in [
        ("a NUL byte in the name", sample_job("odd-nul")),
        ("a 300-character name", sample_job("odd-long")),
    ] {
        if what.contains("NUL") {
            bad.name = "nul \0 inside".into();
        } else {
            bad.name = "n".repeat(300);
        }
        let ok = sample_job("odd-batch-mate");
        match s.create_jobs(&[ok.clone(), bad.clone()]).await {
            Ok(_) => {
                let back = s.get_job(&bad.job_id).await.unwrap();
                assert_eq!(
                    back.name, bad.name,
                    "{what}: stored, so it must be verbatim"
                );
                s.delete_job(&bad.job_id, None).await.unwrap();
                s.delete_job(&ok.job_id, None).await.unwrap();
            }
            Err(Error::Invalid { reason, .. }) => {
                assert!(!reason.is_empty(), "{what}: the error says why");
                assert!(
                    matches!(s.get_job(&ok.job_id).await, Err(Error::NotFound { .. })),
                    "{what}: a refused batch stores none of its jobs"
                );
            }
            Err(e) => panic!("{what}: expected verbatim storage or Invalid, got {e:?}"),
        }
    }
    let list = s.list_jobs(&JobQuery::default()).await.unwrap();
    assert!(
        list.items.iter().any(|j| j.job_id == job.job_id),
        "the store still lists"
    );
}

// ------------------------------------------------------------------------------------- durability

/// Set in the child process of [`sigkill_mid_load`]: where the store is.
pub const DURABILITY_CHILD: &str = "JOBSCHED_DURABILITY_CHILD";

const MAIN_JOB: &str = "durability-main";
const RECORDS_PER_BATCH: usize = 20;
const JOBS_PER_BATCH: usize = 3;

/// The writer of the durability test: writes batches of jobs, of records and of state changes as fast
/// as the store takes them, and prints `ack …` for each write after the store returned success.
pub async fn durability_writer(store: Arc<dyn Storage>) {
    #![allow(clippy::print_stdout)] // The acknowledgements are the child's output.
    let job = sample_job(MAIN_JOB);
    let mut unfinished: Vec<TaskId> = Vec::new();
    for batch in 0u64.. {
        if batch % 5 == 0 {
            let jobs: Vec<_> = (0..JOBS_PER_BATCH)
                .map(|k| {
                    let mut j = sample_job(&format!("dur-{batch}-{k}"));
                    j.name = format!("durability batch {batch}");
                    j.command = format!("echo {batch} {k}");
                    j
                })
                .collect();
            store.create_jobs(&jobs).await.expect("create jobs");
            println!("ack jobs {batch}");
        }
        let records: Vec<_> = (0..RECORDS_PER_BATCH)
            .map(|i| {
                let at = t0() + TimeDelta::milliseconds((batch * 100 + i as u64) as i64);
                let mut r = sample_record(&job, Trigger::Schedule, at);
                r.params.insert("batch".into(), batch.into());
                r
            })
            .collect();
        let out = store
            .insert_executions(&records, None)
            .await
            .expect("insert");
        assert!(
            out.iter()
                .all(|o| matches!(o, InsertOutcome::Inserted { .. }))
        );
        for r in &records {
            println!("ack rec {}", r.task_id);
        }
        unfinished.extend(records.iter().map(|r| r.task_id.clone()));
        let done: Vec<TaskId> = unfinished.drain(..RECORDS_PER_BATCH / 2).collect();
        let updates: Vec<_> = done
            .iter()
            .map(|t| {
                let mut u =
                    ExecutionUpdate::new(t.clone(), 1, Expect::Active, TaskStatus::Succeeded);
                u.output = Some(format!("out-{t}"));
                u.end_time = Some(t0());
                u.exit_code = Some(0);
                u
            })
            .collect();
        store
            .update_executions(&updates, None)
            .await
            .expect("update");
        for t in &done {
            println!("ack done {t}");
        }
    }
}

/// Checks a reopened store against the acknowledgements of a killed writer: every acknowledged write is
/// there, every batch is whole or absent, every stored state change is whole.
pub async fn durability_check(store: &dyn Storage, acks: &[String]) {
    let mut job_batches = Vec::new();
    let mut recs = Vec::new();
    let mut done = Vec::new();
    for a in acks {
        let mut parts = a.split(' ').skip(1);
        match (parts.next(), parts.next()) {
            (Some("jobs"), Some(b)) => job_batches.push(b.to_owned()),
            (Some("rec"), Some(t)) => recs.push(TaskId::from_trusted(t)),
            (Some("done"), Some(t)) => done.push(TaskId::from_trusted(t)),
            _ => {}
        }
    }
    assert!(!recs.is_empty(), "the writer acknowledged nothing");
    for b in &job_batches {
        for k in 0..JOBS_PER_BATCH {
            let id = JobId::new(format!("dur-{b}-{k}")).unwrap();
            let j = store
                .get_job(&id)
                .await
                .unwrap_or_else(|e| panic!("acknowledged job {id} is missing after the kill: {e}"));
            assert_eq!(j.command, format!("echo {b} {k}"));
        }
    }
    for t in &recs {
        store
            .get_execution(t, 1)
            .await
            .unwrap_or_else(|e| panic!("acknowledged record {t} is missing after the kill: {e}"));
    }
    for t in &done {
        let r = store.get_execution(t, 1).await.unwrap();
        assert_eq!(
            r.status,
            TaskStatus::Succeeded,
            "acknowledged result of {t} is missing"
        );
    }
    // Whole or absent: every job batch has all its jobs, every record batch all its records, every
    // succeeded record its output.
    let jobs = all_jobs(store).await;
    let mut per_batch = std::collections::HashMap::<String, usize>::new();
    for name in jobs {
        *per_batch.entry(name).or_default() += 1;
    }
    for (name, n) in per_batch {
        assert_eq!(n, JOBS_PER_BATCH, "'{name}' is half-written: {n} jobs");
    }
    let mut per_record_batch = std::collections::HashMap::<u64, usize>::new();
    let mut page = 1;
    loop {
        let q = ExecutionQuery {
            job_id: Some(JobId::new(MAIN_JOB).unwrap()),
            page: PageRequest::new(page, 1000).unwrap(),
            ..ExecutionQuery::default()
        };
        let p = store
            .list_executions(&q)
            .await
            .expect("every stored record decodes");
        for r in &p.items {
            let b = r
                .params
                .get("batch")
                .and_then(|v| v.as_u64())
                .expect("batch param");
            *per_record_batch.entry(b).or_default() += 1;
            if r.status == TaskStatus::Succeeded {
                assert_eq!(
                    r.output,
                    format!("out-{}", r.task_id),
                    "half-applied result"
                );
                assert!(
                    r.end_time.is_some() && r.exit_code == Some(0),
                    "half-applied result"
                );
            }
        }
        if p.items.len() < 1000 {
            break;
        }
        page += 1;
    }
    for (b, n) in per_record_batch {
        assert_eq!(n, RECORDS_PER_BATCH, "record batch {b} is half-written");
    }
}

async fn all_jobs(store: &dyn Storage) -> Vec<String> {
    let mut names = Vec::new();
    let mut page = 1;
    loop {
        let q = JobQuery {
            name: Some("durability batch".into()),
            page: PageRequest::new(page, 1000).unwrap(),
            ..JobQuery::default()
        };
        let p = store.list_jobs(&q).await.expect("every stored job decodes");
        names.extend(p.items.iter().map(|j| j.name.clone()));
        if p.items.len() < 1000 {
            break names;
        }
        page += 1;
    }
}

/// The durability test, both roles. In the test process: starts this same test binary as a child
/// (running only `test_name`, with [`DURABILITY_CHILD`] set to `target`), lets it write until it has
/// acknowledged `min_acks` writes, kills it with SIGKILL, reopens the store with `open(target)` and runs
/// [`durability_check`]. In the child: opens the store and runs [`durability_writer`] until killed.
pub async fn sigkill_mid_load<F, Fut>(test_name: &str, target: &str, min_acks: usize, open: F)
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = Arc<dyn Storage>>,
{
    if let Ok(target) = std::env::var(DURABILITY_CHILD) {
        durability_writer(open(target).await).await;
        return;
    }
    let exe = std::env::current_exe().expect("test binary path");
    let mut child = tokio::process::Command::new(exe)
        .args([test_name, "--exact", "--nocapture", "--test-threads", "1"])
        .env(DURABILITY_CHILD, target)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start the writer");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let mut acks = Vec::new();
    while acks.len() < min_acks {
        match lines.next_line().await.expect("read the writer's output") {
            Some(l) if l.starts_with("ack ") => acks.push(l),
            Some(_) => {}
            None => panic!(
                "the writer ended after {} acknowledgements: {:?}",
                acks.len(),
                child.wait().await
            ),
        }
    }
    // SIGKILL: no destructor, no flush, no rollback runs in the writer.
    child.start_kill().expect("kill the writer");
    // Acknowledgements already printed before the kill count too.
    while let Ok(Some(l)) = lines.next_line().await {
        if l.starts_with("ack ") {
            acks.push(l);
        }
    }
    let status = child.wait().await.expect("reap the writer");
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9),
        "the writer was killed by SIGKILL"
    );
    let store = open(target.to_owned()).await;
    durability_check(store.as_ref(), &acks).await;
}

/// History totals stop at [`jobsched::COUNT_CAP`] (the page says so) instead of counting a whole huge
/// history; a narrower filter is counted exactly; pages deeper than [`jobsched::MAX_PAGE`] are refused.
pub async fn history_counts_stop_at_the_cap(open: &dyn OpenStorage) {
    let s = open.open().await;
    let big = sample_job("counted-big");
    let small = sample_job("counted-small");
    s.create_jobs(&[big.clone(), small.clone()]).await.unwrap();
    let n = jobsched::COUNT_CAP as usize + 5;
    let mut done = 0;
    while done < n {
        let batch: Vec<_> = (0..1000.min(n - done))
            .map(|i| {
                let mut r = sample_record(&big, Trigger::Manual, t0());
                r.task_id = TaskId::generate();
                r.scheduled_time = t0() + TimeDelta::seconds((done + i) as i64);
                r
            })
            .collect();
        s.insert_executions(&batch, None).await.unwrap();
        done += batch.len();
    }
    let small_rec = sample_record(&small, Trigger::Manual, t0());
    s.insert_executions(&[small_rec], None).await.unwrap();
    let page = |job: Option<JobId>| ExecutionQuery {
        job_id: job,
        page: PageRequest::new(1, 10).unwrap(),
        ..ExecutionQuery::default()
    };
    let all = s.list_executions(&page(None)).await.unwrap();
    assert_eq!(
        (all.total, all.total_capped, all.items.len()),
        (jobsched::COUNT_CAP, true, 10)
    );
    let one = s.list_executions(&page(Some(small.job_id))).await.unwrap();
    assert_eq!((one.total, one.total_capped), (1, false));
    let e = PageRequest::new(jobsched::MAX_PAGE + 1, 10).unwrap_err();
    assert!(e.to_string().contains("page"), "{e}");
}
