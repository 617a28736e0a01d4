//! Capping output: a byte buffer that keeps the last `cap` bytes written to it and counts what it
//! dropped, and [`cap_text`], which caps text that may already carry a truncation marker.

use std::borrow::Cow;
use std::collections::VecDeque;

const MARKER_HEAD: &str = "[jobsched: ";
const MARKER_TAIL: &str = " earlier bytes truncated]\n";

/// The marker line that starts text of which `dropped` earlier bytes were cut.
fn marker(dropped: u64) -> String {
    format!("{MARKER_HEAD}{dropped}{MARKER_TAIL}")
}

/// Splits a leading truncation marker off `text`: the bytes it says were dropped, and the rest.
fn split_marker(text: &str) -> (u64, &str) {
    let parsed = text.strip_prefix(MARKER_HEAD).and_then(|rest| {
        let end = rest.find(MARKER_TAIL)?;
        let n = rest[..end].parse::<u64>().ok()?;
        Some((n, &rest[end + MARKER_TAIL.len()..]))
    });
    parsed.unwrap_or((0, text))
}

/// Keeps at most `max_bytes` of `text`, marker included: the tail (where a failing program prints why),
/// cut at a character boundary, after a marker line that says how many bytes were dropped. Text that was
/// already cut (it starts with a marker) is cut again with one marker that counts every dropped byte, so
/// however many layers cap it (executor, transport, store) the number is the real one. Text within the
/// cap is returned as it is.
///
/// ```
/// use jobsched::handler::cap_text;
/// assert_eq!(cap_text("short", 100), "short");
/// let once = cap_text(&"x".repeat(1000), 100).into_owned();
/// assert!(once.len() <= 100 && once.ends_with("xxx"));
/// let kept = once.len() - once.find('\n').unwrap() - 1;
/// assert!(once.starts_with(&format!("[jobsched: {} earlier bytes truncated]", 1000 - kept)));
/// let twice = cap_text(&once, 60);
/// let kept = twice.len() - twice.find('\n').unwrap() - 1;
/// assert!(twice.starts_with(&format!("[jobsched: {} earlier bytes truncated]", 1000 - kept)));
/// ```
pub fn cap_text(text: &str, max_bytes: usize) -> Cow<'_, str> {
    if text.len() <= max_bytes {
        return Cow::Borrowed(text);
    }
    let (before, rest) = split_marker(text);
    // The marker's length depends on the number it carries; size it for the worst case (every byte
    // dropped), then keep as much of the tail as fits beside it.
    let marker_room = marker(before + rest.len() as u64).len();
    let keep = max_bytes.saturating_sub(marker_room).min(rest.len());
    let mut start = rest.len() - keep;
    while !rest.is_char_boundary(start) {
        start += 1;
    }
    Cow::Owned(format!(
        "{}{}",
        marker(before + start as u64),
        &rest[start..]
    ))
}

/// Keeps the tail of a stream: at most `cap` bytes, dropping the oldest.
#[derive(Debug, Clone)]
pub struct CappedBuffer {
    cap: usize,
    buf: VecDeque<u8>,
    dropped: u64,
}

impl CappedBuffer {
    /// A buffer keeping at most `cap` bytes.
    pub fn new(cap: usize) -> Self {
        CappedBuffer {
            cap,
            buf: VecDeque::with_capacity(cap.min(8192)),
            dropped: 0,
        }
    }

    /// Appends bytes, dropping the oldest beyond the cap.
    pub fn push(&mut self, mut bytes: &[u8]) {
        if bytes.len() > self.cap {
            let skip = bytes.len() - self.cap;
            self.dropped += skip as u64;
            bytes = &bytes[skip..];
        }
        let overflow = (self.buf.len() + bytes.len()).saturating_sub(self.cap);
        if overflow > 0 {
            self.buf.drain(..overflow);
            self.dropped += overflow as u64;
        }
        self.buf.extend(bytes);
    }

    /// Bytes dropped so far.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The kept text (invalid UTF-8 replaced), prefixed with a marker line when bytes were dropped.
    pub fn into_text(self) -> String {
        let (a, b) = self.buf.as_slices();
        let mut bytes = Vec::with_capacity(a.len() + b.len());
        bytes.extend_from_slice(a);
        bytes.extend_from_slice(b);
        let text = String::from_utf8_lossy(&bytes);
        if self.dropped > 0 {
            format!("{}{text}", marker(self.dropped))
        } else {
            text.into_owned()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_tail_and_marks_the_cut() {
        let mut b = CappedBuffer::new(5);
        b.push(b"abc");
        b.push(b"defg");
        assert_eq!(b.dropped(), 2);
        assert_eq!(
            b.into_text(),
            "[jobsched: 2 earlier bytes truncated]\ncdefg"
        );
        let mut b = CappedBuffer::new(4);
        b.push(b"0123456789");
        assert_eq!(b.into_text(), "[jobsched: 6 earlier bytes truncated]\n6789");
        let mut b = CappedBuffer::new(10);
        b.push(b"short");
        assert_eq!(b.into_text(), "short");
    }

    #[test]
    fn invalid_utf8_is_replaced_not_rejected() {
        let mut b = CappedBuffer::new(10);
        b.push(&[b'o', b'k', 0xff, 0xfe]);
        assert_eq!(b.into_text(), "ok\u{fffd}\u{fffd}");
    }

    #[test]
    fn a_second_cut_counts_the_first() {
        // `seq 1 1000000` is 6,888,896 bytes; the executor keeps 1 MiB, the store 64 KiB.
        let text: String = (1..=1_000_000).map(|i| format!("{i}\n")).collect();
        let mut b = CappedBuffer::new(1 << 20);
        b.push(text.as_bytes());
        let executor = b.into_text();
        let store = cap_text(&executor, 65_536);
        let (dropped, kept) = split_marker(&store);
        assert!(store.len() <= 65_536);
        assert_eq!(
            dropped as usize + kept.len(),
            text.len(),
            "{}",
            &store[..60]
        );
        assert!(text.ends_with(kept));
        // Within the cap, marked text stays as it is.
        assert_eq!(cap_text(&store, 65_536), store);
    }
}
