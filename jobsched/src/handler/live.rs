//! The live output of a running attempt: what its handler writes is sent in chunks while it runs, at
//! most one chunk of at most `max_chunk` bytes per `interval`, through the dispatcher's best-effort
//! output stream. Memory stays bounded whatever the task writes: between two sends the sink keeps only
//! the newest `max_chunk` bytes, and the next chunk's offset says how many were skipped.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

use crate::dispatch::Dispatcher;
use crate::model::{OutputChunk, TaskId};

/// Output written since the last send.
#[derive(Debug, Default)]
struct Pending {
    /// The newest bytes (at most `max_chunk`).
    buf: Vec<u8>,
    /// The offset of `buf[0]` in the attempt's output.
    start: u64,
    /// No more writes: send what is left and stop.
    closed: bool,
}

impl Pending {
    /// Takes the complete UTF-8 text of the buffer (an incomplete character at its end waits for the
    /// rest), with its offset.
    fn take(&mut self) -> Option<(u64, String)> {
        let keep = incomplete_tail(&self.buf, self.closed);
        let n = self.buf.len() - keep;
        if n == 0 {
            return None;
        }
        let text = String::from_utf8_lossy(&self.buf[..n]).into_owned();
        let offset = self.start;
        self.buf.drain(..n);
        self.start += n as u64;
        Some((offset, text))
    }
}

/// How many bytes at the end of `b` begin a UTF-8 character that is not complete yet (0 when `done`).
fn incomplete_tail(b: &[u8], done: bool) -> usize {
    if done {
        return 0;
    }
    for back in 1..=b.len().min(3) {
        let byte = b[b.len() - back];
        if byte & 0b1100_0000 == 0b1000_0000 {
            continue; // a continuation byte: look further back for the lead
        }
        let need = match byte {
            0xC0..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF7 => 4,
            _ => 1,
        };
        return if need > back { back } else { 0 };
    }
    0
}

/// The live output sink of one attempt (see the module documentation). Cheap to share.
#[derive(Debug)]
pub struct LiveOutput {
    pending: Mutex<Pending>,
    wake: Notify,
    max_chunk: usize,
}

impl LiveOutput {
    /// A sink for attempt `attempt` of `task_id` whose sender task sends through `dispatcher` every
    /// `interval`, at most `max_chunk` bytes at a time (at least 1). Must be called on a Tokio runtime.
    pub fn start(
        dispatcher: Arc<dyn Dispatcher>,
        task_id: TaskId,
        attempt: u32,
        interval: Duration,
        max_chunk: usize,
    ) -> Arc<LiveOutput> {
        let live = Arc::new(LiveOutput {
            pending: Mutex::new(Pending::default()),
            wake: Notify::new(),
            max_chunk: max_chunk.max(1),
        });
        tokio::spawn(send_loop(
            live.clone(),
            dispatcher,
            task_id,
            attempt,
            interval,
        ));
        live
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds what the task wrote (keeping only the newest `max_chunk` bytes until the next send).
    pub fn write(&self, bytes: &[u8]) {
        let mut p = self.lock();
        if p.closed {
            return;
        }
        p.buf.extend_from_slice(bytes);
        let excess = p.buf.len().saturating_sub(self.max_chunk);
        if excess > 0 {
            // Skip whole characters: never start a chunk inside one.
            let mut cut = excess;
            while cut < p.buf.len() && p.buf[cut] & 0b1100_0000 == 0b1000_0000 {
                cut += 1;
            }
            p.buf.drain(..cut);
            p.start += cut as u64;
        }
    }

    /// Ends the stream: what is left is sent at once, and the sender stops.
    pub fn close(&self) {
        self.lock().closed = true;
        self.wake.notify_one();
    }
}

async fn send_loop(
    live: Arc<LiveOutput>,
    dispatcher: Arc<dyn Dispatcher>,
    task_id: TaskId,
    attempt: u32,
    interval: Duration,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = live.wake.notified() => {}
        }
        let (taken, closed) = {
            let mut p = live.lock();
            (p.take(), p.closed)
        };
        if let Some((offset, text)) = taken {
            let chunk = OutputChunk {
                task_id: task_id.clone(),
                attempt,
                offset,
                text,
            };
            if let Err(e) = dispatcher.send_output(std::slice::from_ref(&chunk)).await {
                tracing::debug!(error = %e, task_id = %task_id, "a live output chunk was not sent");
            }
        }
        if closed {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::{ChannelDispatcher, OutputFeed};

    async fn all(feed: &mut Box<dyn OutputFeed>, until_offset: u64) -> Vec<OutputChunk> {
        let mut got = Vec::new();
        while got
            .last()
            .is_none_or(|c: &OutputChunk| c.offset + (c.text.len() as u64) < until_offset)
        {
            got.extend(feed.recv(100).await.unwrap());
        }
        got
    }

    #[tokio::test(start_paused = true)]
    async fn output_is_sent_in_chunks_and_a_flood_keeps_only_the_newest_bytes() {
        let d = ChannelDispatcher::default();
        let mut feed = d.output_feed().await.unwrap();
        let task = TaskId::generate();
        let live = LiveOutput::start(
            Arc::new(d.clone()),
            task.clone(),
            2,
            Duration::from_millis(100),
            16,
        );
        live.write(b"hello ");
        live.write(b"world\n");
        let got = all(&mut feed, 12).await;
        assert_eq!(got.len(), 1, "one chunk per interval: {got:?}");
        assert_eq!((got[0].offset, got[0].text.as_str()), (0, "hello world\n"));
        assert_eq!(got[0].attempt, 2);
        // 1,000 bytes in one interval: only the newest 16 are sent, at their offset.
        live.write(&[b'x'; 990]);
        live.write(b"0123456789");
        let got = all(&mut feed, 1012).await;
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].offset, 1012 - 16);
        assert_eq!(got[0].text, "xxxxxx0123456789");
        live.close();
        live.write(b"after the end");
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(
            tokio::time::timeout(Duration::from_millis(10), feed.recv(10))
                .await
                .is_err(),
            "nothing is sent after close"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_character_split_between_writes_is_sent_whole() {
        let d = ChannelDispatcher::default();
        let mut feed = d.output_feed().await.unwrap();
        let live = LiveOutput::start(
            Arc::new(d.clone()),
            TaskId::generate(),
            1,
            Duration::from_millis(50),
            1024,
        );
        let snow = "a☃".as_bytes(); // 'a' then 3 bytes
        live.write(&snow[..2]);
        let got = all(&mut feed, 1).await;
        assert_eq!(got[0].text, "a", "the started character waits");
        live.write(&snow[2..]);
        live.close();
        let got = all(&mut feed, 4).await;
        assert_eq!((got[0].offset, got[0].text.as_str()), (1, "☃"));
    }

    #[test]
    fn incomplete_tails_are_recognised() {
        assert_eq!(incomplete_tail(b"abc", false), 0);
        assert_eq!(incomplete_tail(&"☃".as_bytes()[..1], false), 1);
        assert_eq!(incomplete_tail(&"☃".as_bytes()[..2], false), 2);
        assert_eq!(incomplete_tail("☃".as_bytes(), false), 0);
        assert_eq!(incomplete_tail(&"☃".as_bytes()[..2], true), 0);
    }
}
