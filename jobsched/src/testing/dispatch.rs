//! Conformance of [`Dispatcher`] implementations.
//!
//! [`Dispatcher`]: crate::dispatch::Dispatcher

use std::collections::HashSet;

use super::{OpenDispatcher, WAIT, sample_job, sample_record, t0};
use crate::dispatch::{Delivery, Inbox};
use crate::error::Error;
use crate::model::{
    CancelReason, Control, ExecutorId, OutputChunk, Task, TaskId, TaskResult, TaskStatus, Trigger,
};

fn task_for(exec: &str) -> Task {
    let job = sample_job("dispatch-job");
    let mut t = sample_record(&job, Trigger::Manual, t0()).to_task();
    t.executor_id = Some(ExecutorId::new(exec).unwrap());
    t.executor_epoch = 1;
    t
}

fn result_of(task: &Task, status: TaskStatus) -> TaskResult {
    TaskResult {
        task_id: task.task_id.clone(),
        job_id: task.job_id.clone(),
        executor_id: task.executor_id.clone().unwrap(),
        status,
        start_time: t0(),
        end_time: status.is_terminal().then(t0),
        output: "out".into(),
        error: String::new(),
        exit_code: 0,
        attempt: task.attempt,
        executor_epoch: 1,
        no_retry: false,
        retry_after_ms: None,
    }
}

/// Receives until `want` messages arrived (failing after [`WAIT`]), acknowledging nothing.
pub async fn recv_n<T: Send>(inbox: &mut Box<dyn Inbox<T>>, want: usize) -> Vec<Delivery<T>> {
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while got.len() < want {
        match tokio::time::timeout_at(deadline, inbox.recv(want - got.len())).await {
            Ok(Ok(batch)) => {
                assert!(
                    !batch.is_empty(),
                    "the inbox closed after {} of {want} messages",
                    got.len()
                );
                got.extend(batch);
            }
            Ok(Err(e)) => panic!("receiving failed: {e}"),
            Err(_) => panic!(
                "only {} of {want} messages arrived within {WAIT:?}",
                got.len()
            ),
        }
    }
    got
}

/// **A task reaches only the chosen executor**, in the order sent.
pub async fn task_reaches_only_the_chosen_executor(open: &dyn OpenDispatcher) {
    let d = open.open().await;
    let a = ExecutorId::new("conf-exec-a").unwrap();
    let b = ExecutorId::new("conf-exec-b").unwrap();
    let mut inbox_a = d.task_inbox(&a).await.unwrap();
    let mut inbox_b = d.task_inbox(&b).await.unwrap();
    let for_a: Vec<Task> = (0..5).map(|_| task_for("conf-exec-a")).collect();
    let for_b: Vec<Task> = (0..3).map(|_| task_for("conf-exec-b")).collect();
    let mut mixed = Vec::new();
    for i in 0..5 {
        mixed.push(for_a[i].clone());
        if i < 3 {
            mixed.push(for_b[i].clone());
        }
    }
    open.open().await.send_tasks(&mixed).await.unwrap();
    // Order is kept per executor, so once B's last task is in, nothing else sent to B is still on its way.
    let got_b = recv_n(&mut inbox_b, 3).await;
    let ids_b: Vec<&TaskId> = got_b.iter().map(|d| &d.message.task_id).collect();
    assert_eq!(
        ids_b,
        for_b.iter().map(|t| &t.task_id).collect::<Vec<_>>(),
        "B gets exactly its tasks, in order"
    );
    let got_a = recv_n(&mut inbox_a, 5).await;
    let ids_a: Vec<&TaskId> = got_a.iter().map(|d| &d.message.task_id).collect();
    assert_eq!(
        ids_a,
        for_a.iter().map(|t| &t.task_id).collect::<Vec<_>>(),
        "A gets exactly its tasks, in order"
    );
    assert_eq!(got_a[0].message, for_a[0], "the task arrives unchanged");
    let tags: Vec<_> = got_a.iter().chain(&got_b).map(|d| d.tag).collect();
    inbox_a.ack(&tags[..5]).await.unwrap();
    inbox_b.ack(&tags[5..]).await.unwrap();
    // A marker after the acknowledged tasks: it is the next thing B sees.
    let marker = task_for("conf-exec-b");
    d.send_tasks(std::slice::from_ref(&marker)).await.unwrap();
    let next = recv_n(&mut inbox_b, 1).await;
    assert_eq!(
        next[0].message.task_id, marker.task_id,
        "no task meant for A reached B"
    );
}

/// A task without an executor is refused.
pub async fn task_without_executor_is_refused(open: &dyn OpenDispatcher) {
    let d = open.open().await;
    let mut t = task_for("conf-exec-x");
    t.executor_id = None;
    let e = d.send_tasks(&[t]).await.unwrap_err();
    assert!(matches!(e, Error::Invalid { .. }), "got {e:?}");
}

/// **At-least-once**: tasks not acknowledged when their consumer goes away are delivered to the next
/// consumer of the same executor; acknowledged ones are not.
pub async fn unacknowledged_tasks_are_redelivered(open: &dyn OpenDispatcher) {
    let d = open.open().await;
    let exec = ExecutorId::new("conf-exec-redeliver").unwrap();
    let tasks: Vec<Task> = (0..4).map(|_| task_for("conf-exec-redeliver")).collect();
    {
        let mut inbox = d.task_inbox(&exec).await.unwrap();
        d.send_tasks(&tasks).await.unwrap();
        let got = recv_n(&mut inbox, 4).await;
        // Acknowledge the first two only, out of order.
        inbox.ack(&[got[1].tag, got[0].tag]).await.unwrap();
    }
    let d2 = open.open().await;
    let mut inbox = d2.task_inbox(&exec).await.unwrap();
    let again = recv_n(&mut inbox, 2).await;
    let ids: HashSet<&TaskId> = again.iter().map(|d| &d.message.task_id).collect();
    assert!(
        ids.contains(&tasks[2].task_id) && ids.contains(&tasks[3].task_id),
        "the unacknowledged tasks come back: {ids:?}"
    );
    assert!(
        !ids.contains(&tasks[0].task_id) && !ids.contains(&tasks[1].task_id),
        "acknowledged tasks do not come back: {ids:?}"
    );
    let tags: Vec<_> = again.iter().map(|d| d.tag).collect();
    inbox.ack(&tags).await.unwrap();
}

/// **Results reach the scheduler**, in order per task.
pub async fn results_reach_the_scheduler(open: &dyn OpenDispatcher) {
    let d = open.open().await;
    let mut inbox = d.result_inbox().await.unwrap();
    let tasks: Vec<Task> = (0..3).map(|_| task_for("conf-exec-r")).collect();
    let mut sent = Vec::new();
    for t in &tasks {
        sent.push(result_of(t, TaskStatus::Running));
        sent.push(result_of(t, TaskStatus::Succeeded));
    }
    open.open().await.send_results(&sent).await.unwrap();
    let got = recv_n(&mut inbox, 6).await;
    for t in &tasks {
        let statuses: Vec<TaskStatus> = got
            .iter()
            .filter(|d| d.message.task_id == t.task_id)
            .map(|d| d.message.status)
            .collect();
        assert_eq!(
            statuses,
            vec![TaskStatus::Running, TaskStatus::Succeeded],
            "order per task"
        );
    }
    let first = got
        .iter()
        .find(|d| d.message.task_id == tasks[0].task_id)
        .unwrap();
    assert_eq!(first.message, sent[0], "a result arrives unchanged");
    let tags: Vec<_> = got.iter().map(|d| d.tag).collect();
    inbox.ack(&tags).await.unwrap();
}

/// **A cancel reaches the executor** it is sent to.
pub async fn control_reaches_the_executor(open: &dyn OpenDispatcher) {
    let d = open.open().await;
    let exec = ExecutorId::new("conf-exec-ctl").unwrap();
    let other = ExecutorId::new("conf-exec-ctl-other").unwrap();
    let mut inbox = d.control_inbox(&exec).await.unwrap();
    let mut other_inbox = d.control_inbox(&other).await.unwrap();
    let c = Control::Cancel {
        task_id: TaskId::generate(),
        attempt: 2,
        reason: CancelReason::User,
    };
    let c2 = Control::Cancel {
        task_id: TaskId::generate(),
        attempt: 1,
        reason: CancelReason::Timeout,
    };
    d.send_control(&exec, &c).await.unwrap();
    d.send_control(&other, &c2).await.unwrap();
    let got = recv_n(&mut inbox, 1).await;
    assert_eq!(got[0].message, c);
    let got_other = recv_n(&mut other_inbox, 1).await;
    assert_eq!(
        got_other[0].message, c2,
        "each executor gets only its own control messages"
    );
    inbox.ack(&[got[0].tag]).await.unwrap();
    other_inbox.ack(&[got_other[0].tag]).await.unwrap();
}

/// `recv` is cancel-safe: a receive abandoned by a timeout loses nothing.
pub async fn recv_is_cancel_safe(open: &dyn OpenDispatcher) {
    let d = open.open().await;
    let exec = ExecutorId::new("conf-exec-cancel-safe").unwrap();
    let mut inbox = d.task_inbox(&exec).await.unwrap();
    for _ in 0..3 {
        let r = tokio::time::timeout(std::time::Duration::from_millis(20), inbox.recv(10)).await;
        assert!(r.is_err(), "nothing was sent yet");
    }
    let t = task_for("conf-exec-cancel-safe");
    d.send_tasks(std::slice::from_ref(&t)).await.unwrap();
    let got = recv_n(&mut inbox, 1).await;
    assert_eq!(got[0].message.task_id, t.task_id);
    inbox.ack(&[got[0].tag]).await.unwrap();
}

/// **Live output reaches every listener** opened before it was sent, unchanged and in order per
/// attempt.
pub async fn output_reaches_every_listener(open: &dyn OpenDispatcher) {
    let d = open.open().await;
    let mut a = d.output_feed().await.unwrap();
    let mut b = open.open().await.output_feed().await.unwrap();
    // A broker's listener starts at the stream's end once it is assigned: keep sending until both hear.
    let task = TaskId::generate();
    let chunk = |offset: u64| OutputChunk {
        task_id: task.clone(),
        attempt: 1,
        offset,
        text: format!("line at {offset} ✓\n"),
    };
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut sent = Vec::new();
    let mut heard_a = Vec::new();
    let mut heard_b = Vec::new();
    while heard_a.is_empty() || heard_b.is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no listener heard the output"
        );
        let c = chunk(sent.len() as u64 * 100);
        open.open()
            .await
            .send_output(std::slice::from_ref(&c))
            .await
            .unwrap();
        sent.push(c);
        let wait = std::time::Duration::from_millis(200);
        for (feed, heard) in [(&mut a, &mut heard_a), (&mut b, &mut heard_b)] {
            if let Ok(got) = tokio::time::timeout(wait, feed.recv(100)).await {
                heard.extend(got.unwrap().into_iter().filter(|c| c.task_id == task));
            }
        }
    }
    // Two more in one call: both listeners hear them, after what they heard, in order.
    let more = [chunk(10_000), chunk(10_100)];
    d.send_output(&more).await.unwrap();
    for (feed, heard) in [(&mut a, &mut heard_a), (&mut b, &mut heard_b)] {
        while !heard.ends_with(&more) {
            let got = tokio::time::timeout(WAIT, feed.recv(100))
                .await
                .expect("the last chunks arrive")
                .unwrap();
            heard.extend(got.into_iter().filter(|c| c.task_id == task));
        }
        let offsets: Vec<u64> = heard.iter().map(|c| c.offset).collect();
        assert!(
            offsets.windows(2).all(|w| w[0] < w[1]),
            "in order: {offsets:?}"
        );
        assert!(
            heard.iter().all(|c| sent.contains(c) || more.contains(c)),
            "unchanged"
        );
    }
}

/// Every behaviour of this suite, by function name (for the coverage check in backend tests).
pub fn behaviours() -> Vec<&'static str> {
    super::behaviours_in(include_str!("dispatch.rs"))
}
