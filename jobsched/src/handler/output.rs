//! A byte buffer that keeps the last `cap` bytes written to it and counts what it dropped.

use std::collections::VecDeque;

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
            format!(
                "[jobsched: {} earlier bytes truncated]\n{text}",
                self.dropped
            )
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
}
