//! The live output schedulers keep of running tasks: the chunks executors send
//! ([`Dispatcher::output_feed`](crate::dispatch::Dispatcher::output_feed)) collected per task, bounded
//! per task and in the number of tasks, for an API to serve from any offset and to stream.
//!
//! ```
//! use jobsched::OutputBuffers;
//! use jobsched::{OutputChunk, TaskId};
//!
//! let buffers = OutputBuffers::new(1024, 16);
//! let task = TaskId::generate();
//! buffers.append(&OutputChunk { task_id: task.clone(), attempt: 1, offset: 0, text: "hello\n".into() });
//! buffers.append(&OutputChunk { task_id: task.clone(), attempt: 1, offset: 6, text: "world\n".into() });
//! let read = buffers.read(&task, 1, 6).unwrap();
//! assert_eq!((read.offset, read.text.as_str(), read.next), (6, "world\n", 12));
//! ```

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use crate::dispatch::OutputFeed;
use crate::model::{OutputChunk, TaskId};

/// What a reader gets of a task's live output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveRead {
    /// The attempt the output belongs to (the newest one seen).
    pub attempt: u32,
    /// The offset of `text` in the attempt's output.
    pub offset: u64,
    /// Bytes between the offset asked for and `offset` that are not kept (written before the kept
    /// tail, or skipped by the executor).
    pub skipped: u64,
    /// The output from `offset`.
    pub text: String,
    /// The offset after `text`: where the next read starts.
    pub next: u64,
}

#[derive(Debug)]
struct Buf {
    attempt: u32,
    /// The offset of `text`'s first byte.
    start: u64,
    text: String,
    /// When it was last appended to (for evicting the least recent).
    touched: u64,
}

impl Buf {
    fn end(&self) -> u64 {
        self.start + self.text.len() as u64
    }
}

#[derive(Debug, Default)]
struct Inner {
    tasks: HashMap<TaskId, Buf>,
    /// `touched` → task, for eviction.
    by_touch: BTreeMap<u64, TaskId>,
    clock: u64,
}

/// Recent live output of running (and just ended) tasks: at most `per_task` bytes of each (the newest),
/// of at most `max_tasks` tasks (the least recently written are forgotten first).
#[derive(Debug)]
pub struct OutputBuffers {
    inner: Mutex<Inner>,
    changed: watch::Sender<u64>,
    per_task: usize,
    max_tasks: usize,
}

impl Default for OutputBuffers {
    /// 256 KiB of each of 256 tasks (at most 64 MiB).
    fn default() -> Self {
        Self::new(256 * 1024, 256)
    }
}

impl OutputBuffers {
    /// Buffers keeping `per_task` bytes of each of `max_tasks` tasks.
    pub fn new(per_task: usize, max_tasks: usize) -> Self {
        OutputBuffers {
            inner: Mutex::new(Inner::default()),
            changed: watch::channel(0).0,
            per_task: per_task.max(16),
            max_tasks: max_tasks.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a chunk: a newer attempt replaces the task's output, a repeated or older chunk is ignored,
    /// and a chunk past the end (bytes the executor skipped) starts the kept output anew at its offset.
    pub fn append(&self, c: &OutputChunk) {
        {
            let mut g = self.lock();
            g.clock += 1;
            let now = g.clock;
            let fresh = || Buf {
                attempt: c.attempt,
                start: c.offset,
                text: c.text.clone(),
                touched: now,
            };
            let old_touch = match g.tasks.get_mut(&c.task_id) {
                None => {
                    g.tasks.insert(c.task_id.clone(), fresh());
                    None
                }
                Some(b) if c.attempt < b.attempt => return,
                Some(b) => {
                    let prev = b.touched;
                    if c.attempt > b.attempt || c.offset > b.end() {
                        *b = fresh();
                    } else if c.offset + c.text.len() as u64 > b.end() {
                        let overlap = (b.end() - c.offset) as usize;
                        match c.text.get(overlap..) {
                            Some(rest) => b.text.push_str(rest),
                            None => return,
                        }
                    } else {
                        return;
                    }
                    b.touched = now;
                    Some(prev)
                }
            };
            if let Some(t) = old_touch {
                g.by_touch.remove(&t);
            }
            g.by_touch.insert(now, c.task_id.clone());
            let per_task = self.per_task;
            if let Some(b) = g.tasks.get_mut(&c.task_id)
                && b.text.len() > per_task
            {
                let mut cut = b.text.len() - per_task;
                while !b.text.is_char_boundary(cut) {
                    cut += 1;
                }
                b.text.drain(..cut);
                b.start += cut as u64;
            }
            while g.tasks.len() > self.max_tasks {
                let Some((_, oldest)) = g.by_touch.pop_first() else {
                    break;
                };
                g.tasks.remove(&oldest);
            }
        }
        self.changed.send_modify(|v| *v += 1);
    }

    /// The kept output of `task` from `from` (an offset in attempt `attempt`'s output; a reader of an
    /// older attempt gets the newest attempt from its start), or `None` if none is kept.
    pub fn read(&self, task: &TaskId, attempt: u32, from: u64) -> Option<LiveRead> {
        let g = self.lock();
        let b = g.tasks.get(task)?;
        let from = if attempt == b.attempt { from } else { 0 };
        let (offset, skipped) = if from < b.start {
            (b.start, b.start - from)
        } else {
            (from.min(b.end()), 0)
        };
        let mut at = (offset - b.start) as usize;
        while !b.text.is_char_boundary(at) {
            at += 1;
        }
        Some(LiveRead {
            attempt: b.attempt,
            offset: b.start + at as u64,
            skipped,
            text: b.text[at..].to_owned(),
            next: b.end(),
        })
    }

    /// A receiver that sees a change whenever a chunk was added (to any task): readers wait on it and
    /// read again.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Collects what `feed` hears until it closes, retrying after errors.
    pub async fn collect(self: Arc<Self>, mut feed: Box<dyn OutputFeed>) {
        loop {
            match feed.recv(512).await {
                Ok(chunks) if chunks.is_empty() => return,
                Ok(chunks) => chunks.iter().for_each(|c| self.append(c)),
                Err(e) => {
                    tracing::warn!(error = %e, "reading live output failed; trying again in 1 s");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(task: &TaskId, attempt: u32, offset: u64, text: &str) -> OutputChunk {
        OutputChunk {
            task_id: task.clone(),
            attempt,
            offset,
            text: text.to_owned(),
        }
    }

    #[test]
    fn keeps_the_newest_bytes_and_says_what_a_reader_missed() {
        let b = OutputBuffers::new(16, 8);
        let t = TaskId::generate();
        b.append(&chunk(&t, 1, 0, "0123456789"));
        b.append(&chunk(&t, 1, 10, "abcdefghij"));
        let r = b.read(&t, 1, 0).unwrap();
        assert_eq!(
            (r.offset, r.skipped, r.text.as_str(), r.next),
            (4, 4, "456789abcdefghij", 20)
        );
        // A repeated chunk changes nothing; an overlapping one adds only what is new.
        b.append(&chunk(&t, 1, 10, "abcdefghij"));
        b.append(&chunk(&t, 1, 18, "ijKL"));
        assert_eq!(b.read(&t, 1, 20).unwrap().text, "KL");
        // Bytes skipped by the executor: the kept output starts again at the chunk.
        b.append(&chunk(&t, 1, 100, "later"));
        let r = b.read(&t, 1, 22).unwrap();
        assert_eq!((r.offset, r.skipped, r.text.as_str()), (100, 78, "later"));
        // A new attempt replaces the old one; a reader of the old one starts at the new one's start.
        b.append(&chunk(&t, 2, 0, "second"));
        b.append(&chunk(&t, 1, 105, "stale"));
        let r = b.read(&t, 1, 105).unwrap();
        assert_eq!((r.attempt, r.offset, r.text.as_str()), (2, 0, "second"));
    }

    #[test]
    fn least_recently_written_tasks_are_forgotten_first() {
        let b = OutputBuffers::new(64, 2);
        let (x, y, z) = (TaskId::generate(), TaskId::generate(), TaskId::generate());
        b.append(&chunk(&x, 1, 0, "x"));
        b.append(&chunk(&y, 1, 0, "y"));
        b.append(&chunk(&x, 1, 1, "x"));
        b.append(&chunk(&z, 1, 0, "z"));
        assert!(b.read(&y, 1, 0).is_none(), "y was written least recently");
        assert_eq!(b.read(&x, 1, 0).unwrap().text, "xx");
        assert_eq!(b.read(&z, 1, 0).unwrap().text, "z");
    }

    #[test]
    fn cuts_fall_on_character_boundaries() {
        let b = OutputBuffers::new(16, 2);
        let t = TaskId::generate();
        b.append(&chunk(&t, 1, 0, "☃☃☃☃☃☃"));
        let r = b.read(&t, 1, 0).unwrap();
        assert_eq!(r.text, "☃☃☃☃☃");
        assert_eq!(b.read(&t, 1, r.offset + 1).unwrap().text, "☃☃☃☃");
    }
}
