//! Signed records: every record jobsched produces carries an HMAC-SHA256 under the cluster key, and every
//! record it consumes is checked before it is decoded.
//!
//! The MAC covers a version tag, the topic (so a record cannot be moved to another executor's topic or
//! to another stream), the record key, the signing time (milliseconds since the Unix epoch) and the
//! payload bytes — the design's JSON message, field for field, which holds the executor id, its epoch
//! and the attempt. It travels in the record header `jobsched-mac` as `v1.<time>.<base64url MAC>`, so
//! the payload stays the design's message.
//!
//! A consumer refuses a record with no header, a MAC no configured key made, or (for tasks and control
//! messages) a signing time older than the maximum age or further ahead than that allowance for clock
//! differences. Results have no age limit: a result applies once per `(task id, attempt)`, so a replay
//! changes nothing, and results that waited out a long scheduler outage must still count.
//!
//! Key rotation: a key file holds one key per line; the first signs, every one verifies. Add the new key
//! as a second line everywhere, then move it first everywhere, then drop the old one.

use std::fmt;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use jobsched::Error;
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The record header that carries the MAC.
pub const HEADER: &str = "jobsched-mac";
/// The smallest key accepted, bytes.
pub const MIN_KEY_BYTES: usize = 32;
const VERSION: &str = "v1";
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The cluster's signing keys (one or more; the first signs). `Debug` never shows them.
///
/// ```
/// use jobsched_kafka::ClusterKey;
/// let text = ClusterKey::generate().encode();
/// let key = ClusterKey::parse(&text).unwrap();
/// assert_eq!(format!("{key:?}"), "ClusterKey(1 key, ***)");
/// assert!(ClusterKey::parse("too short").is_err());
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct ClusterKey {
    keys: Vec<Vec<u8>>,
}

impl fmt::Debug for ClusterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.keys.len();
        write!(
            f,
            "ClusterKey({n} key{}, ***)",
            if n == 1 { "" } else { "s" }
        )
    }
}

impl ClusterKey {
    /// A new random 32-byte key from the operating system's random source.
    pub fn generate() -> ClusterKey {
        let mut k = vec![0u8; MIN_KEY_BYTES];
        getrandom::fill(&mut k).expect("the operating system's random source is readable");
        ClusterKey { keys: vec![k] }
    }

    /// The key file's text: one base64url line per key, the signing key first.
    pub fn encode(&self) -> String {
        self.keys.iter().map(|k| B64.encode(k) + "\n").collect()
    }

    /// Reads keys from text: one base64 (standard or URL-safe, padding optional) key per line, each of at
    /// least 32 bytes; blank lines and lines starting with `#` are skipped.
    pub fn parse(text: &str) -> jobsched::Result<ClusterKey> {
        let mut keys = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let clean: String = line
                .trim_end_matches('=')
                .chars()
                .map(|c| match c {
                    '+' => '-',
                    '/' => '_',
                    c => c,
                })
                .collect();
            let key = B64.decode(clean.as_bytes()).map_err(|_| {
                Error::invalid(
                    "cluster_key",
                    format!(
                        "line {} is not base64 (make a key with `jobsched keygen`)",
                        n + 1
                    ),
                )
            })?;
            if key.len() < MIN_KEY_BYTES {
                return Err(Error::invalid(
                    "cluster_key",
                    format!(
                        "line {} holds {} bytes; a key needs at least {MIN_KEY_BYTES} (make one with \
                         `jobsched keygen`)",
                        n + 1,
                        key.len()
                    ),
                ));
            }
            keys.push(key);
        }
        if keys.is_empty() {
            return Err(Error::invalid(
                "cluster_key",
                "holds no key (make one with `jobsched keygen`)",
            ));
        }
        Ok(ClusterKey { keys })
    }

    /// Reads a key file, naming it in errors.
    pub fn from_file(path: &Path) -> jobsched::Result<ClusterKey> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::invalid(
                "cluster_key_file",
                format!("cannot read {}: {e}", path.display()),
            )
        })?;
        ClusterKey::parse(&text)
            .map_err(|e| Error::invalid("cluster_key_file", format!("{}: {e}", path.display())))
    }

    fn mac(key: &[u8], topic: &str, record_key: &[u8], time_ms: u64, payload: &[u8]) -> [u8; 32] {
        let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key size");
        for part in [VERSION.as_bytes(), topic.as_bytes(), record_key] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac.update(&time_ms.to_be_bytes());
        mac.update(payload);
        mac.finalize().into_bytes().into()
    }

    /// The header value signing one record now.
    pub fn sign(&self, topic: &str, record_key: &[u8], payload: &[u8]) -> String {
        self.sign_at(topic, record_key, payload, now_ms())
    }

    fn sign_at(&self, topic: &str, record_key: &[u8], payload: &[u8], time_ms: u64) -> String {
        let mac = Self::mac(&self.keys[0], topic, record_key, time_ms, payload);
        format!("{VERSION}.{time_ms}.{}", B64.encode(mac))
    }

    /// Checks a record's header value; `max_age` bounds how old (and how far ahead) its signing time may
    /// be. The error says why it was refused.
    pub fn verify(
        &self,
        topic: &str,
        record_key: &[u8],
        payload: &[u8],
        header: Option<&[u8]>,
        max_age: Option<Duration>,
    ) -> Result<(), Refused> {
        let header = header.ok_or(Refused::Unsigned)?;
        let text = std::str::from_utf8(header).map_err(|_| Refused::Malformed)?;
        let mut parts = text.splitn(3, '.');
        let (Some(VERSION), Some(time), Some(mac)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(Refused::Malformed);
        };
        let time_ms: u64 = time.parse().map_err(|_| Refused::Malformed)?;
        let mac = B64.decode(mac).map_err(|_| Refused::Malformed)?;
        let good = self.keys.iter().any(|k| {
            let want = Self::mac(k, topic, record_key, time_ms, payload);
            bool::from(want.ct_eq(mac.as_slice()))
        });
        if !good {
            return Err(Refused::Forged);
        }
        if let Some(max) = max_age {
            let now = now_ms();
            let max = max.as_millis() as u64;
            if now.saturating_sub(time_ms) > max {
                return Err(Refused::Expired {
                    age_secs: (now - time_ms) / 1000,
                });
            }
            if time_ms.saturating_sub(now) > max {
                return Err(Refused::FromTheFuture {
                    ahead_secs: (time_ms - now) / 1000,
                });
            }
        }
        Ok(())
    }
}

/// The `jobsched-mac` header of a consumed record.
pub(crate) fn header_of<M: rdkafka::Message>(msg: &M) -> Option<&[u8]> {
    use rdkafka::message::Headers;
    let headers = msg.headers()?;
    headers
        .iter()
        .find(|h| h.key == HEADER)
        .and_then(|h| h.value)
}

/// Checks a consumed record against `key` (see [`ClusterKey::verify`]).
pub(crate) fn check<M: rdkafka::Message>(
    key: &ClusterKey,
    msg: &M,
    max_age: Option<Duration>,
) -> Result<(), Refused> {
    key.verify(
        msg.topic(),
        msg.key().unwrap_or_default(),
        msg.payload().unwrap_or_default(),
        header_of(msg),
        max_age,
    )
}

/// The headers of a record signed by `key`.
pub(crate) fn headers(
    key: &ClusterKey,
    topic: &str,
    record_key: &[u8],
    payload: &[u8],
) -> rdkafka::message::OwnedHeaders {
    let value = key.sign(topic, record_key, payload);
    rdkafka::message::OwnedHeaders::new().insert(rdkafka::message::Header {
        key: HEADER,
        value: Some(value.as_bytes()),
    })
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Why a record was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// No `jobsched-mac` header.
    #[error("unsigned: no {HEADER} header (is the producer configured with the cluster key?)")]
    Unsigned,
    /// A header that is not `v1.<time>.<mac>`.
    #[error("malformed {HEADER} header")]
    Malformed,
    /// No configured key made this MAC: forged, altered, moved from another topic, or signed with
    /// another cluster's key.
    #[error("forged: the MAC does not match (altered, moved from another topic, or another key)")]
    Forged,
    /// Signed longer ago than the maximum age: a replay, or a record that waited too long.
    #[error("expired: signed {age_secs} s ago, over the maximum age")]
    Expired {
        /// Seconds since it was signed.
        age_secs: u64,
    },
    /// Signed further ahead than clocks may differ.
    #[error("signed {ahead_secs} s in the future, over the allowed clock difference")]
    FromTheFuture {
        /// Seconds ahead of this host's clock.
        ahead_secs: u64,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_verifies_only_unchanged_on_its_topic_under_a_listed_key() {
        let k = ClusterKey::generate();
        let h = k.sign("p.tasks.a", b"a", b"{}");
        let ok = |topic: &str, key: &[u8], payload: &[u8], h: &str| {
            k.verify(
                topic,
                key,
                payload,
                Some(h.as_bytes()),
                Some(Duration::from_secs(60)),
            )
        };
        assert_eq!(ok("p.tasks.a", b"a", b"{}", &h), Ok(()));
        assert_eq!(ok("p.tasks.b", b"a", b"{}", &h), Err(Refused::Forged));
        assert_eq!(ok("p.tasks.a", b"b", b"{}", &h), Err(Refused::Forged));
        assert_eq!(ok("p.tasks.a", b"a", b"{ }", &h), Err(Refused::Forged));
        assert_eq!(
            ok("p.tasks.a", b"a", b"{}", "v1.1.AAAA"),
            Err(Refused::Forged)
        );
        assert_eq!(
            ok("p.tasks.a", b"a", b"{}", "v2.1.AAAA"),
            Err(Refused::Malformed)
        );
        assert_eq!(k.verify("t", b"", b"", None, None), Err(Refused::Unsigned));
        // Another cluster's key.
        let other = ClusterKey::generate().sign("p.tasks.a", b"a", b"{}");
        assert_eq!(ok("p.tasks.a", b"a", b"{}", &other), Err(Refused::Forged));

        // Rotation: the new key first, the old one second; both verify, the new one signs.
        let new = ClusterKey::generate();
        let both = ClusterKey::parse(&(new.encode() + &k.encode())).unwrap();
        assert!(
            both.verify("t", b"", b"x", Some(h_for(&k).as_bytes()), None)
                .is_ok()
        );
        assert!(
            new.verify("t", b"", b"x", Some(h_for(&both).as_bytes()), None)
                .is_ok()
        );
        assert_eq!(format!("{both:?}"), "ClusterKey(2 keys, ***)");
    }

    fn h_for(k: &ClusterKey) -> String {
        k.sign("t", b"", b"x")
    }

    #[test]
    fn old_and_future_signatures_are_refused_when_an_age_is_set() {
        let k = ClusterKey::generate();
        let hour = 3_600_000;
        let old = k.sign_at("t", b"", b"x", now_ms() - hour);
        let ahead = k.sign_at("t", b"", b"x", now_ms() + hour);
        let age = Some(Duration::from_secs(600));
        assert!(matches!(
            k.verify("t", b"", b"x", Some(old.as_bytes()), age),
            Err(Refused::Expired { age_secs }) if (3599..=3601).contains(&age_secs)
        ));
        assert!(matches!(
            k.verify("t", b"", b"x", Some(ahead.as_bytes()), age),
            Err(Refused::FromTheFuture { .. })
        ));
        assert_eq!(k.verify("t", b"", b"x", Some(old.as_bytes()), None), Ok(()));
    }

    #[test]
    fn key_text_is_checked_by_line() {
        let k = ClusterKey::generate();
        assert_eq!(ClusterKey::parse(&k.encode()).unwrap(), k);
        let standard = base64::engine::general_purpose::STANDARD.encode([7u8; 40]);
        assert!(ClusterKey::parse(&format!("# comment\n\n{standard}\n")).is_ok());
        let e = ClusterKey::parse("\nshort\n").unwrap_err().to_string();
        assert!(e.contains("line 2"), "{e}");
        assert!(
            ClusterKey::parse("# nothing\n")
                .unwrap_err()
                .to_string()
                .contains("no key")
        );
        assert!(
            ClusterKey::parse("!!!")
                .unwrap_err()
                .to_string()
                .contains("not base64")
        );
    }
}
