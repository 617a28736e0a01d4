//! Where the ZooKeeper ensemble is and how long a session lives.

use std::time::Duration;

use serde::Deserialize;

/// Configuration of a [`ZkCoordinator`](crate::ZkCoordinator).
///
/// ```
/// use jobsched_zk::ZkConfig;
/// let c = ZkConfig::parse("127.0.0.1:2181,127.0.0.1:2182/prod/jobsched").unwrap();
/// assert_eq!(c.hosts, "127.0.0.1:2181,127.0.0.1:2182");
/// assert_eq!(c.root, "/prod/jobsched");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZkConfig {
    /// Digest credentials (`user:password`): the session authenticates with them and every node
    /// jobsched creates is readable and writable by that identity only (ACL `auth`). Without them nodes
    /// are created open to anyone (a warning says so). Never read from a file of this configuration;
    /// given by the program ([`ZkDigest::parse`]).
    #[serde(skip)]
    pub digest: Option<ZkDigest>,
    /// The servers, `host:port,host:port`.
    pub hosts: String,
    /// The znode under which jobsched keeps everything (created if missing).
    #[serde(default = "default_root")]
    pub root: String,
    /// Session timeout asked of the servers: how long a process may be unreachable before its
    /// registrations, leaderships and locks end.
    #[serde(default = "default_session_timeout", with = "secs")]
    pub session_timeout: Duration,
    /// How long connecting may take.
    #[serde(default = "default_connect_timeout", with = "secs")]
    pub connect_timeout: Duration,
}

/// ZooKeeper digest credentials, `user:password`. `Debug` shows the user only.
///
/// ```
/// use jobsched_zk::ZkDigest;
/// let d = ZkDigest::parse("jobsched:s3cret-passw0rd").unwrap();
/// assert_eq!(format!("{d:?}"), "ZkDigest(jobsched:***)");
/// assert!(ZkDigest::parse("no-colon").is_err());
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct ZkDigest {
    user: String,
    password: String,
}

impl std::fmt::Debug for ZkDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ZkDigest({}:***)", self.user)
    }
}

impl ZkDigest {
    /// Parses `user:password` (surrounding white space, such as a file's final newline, is dropped).
    pub fn parse(text: &str) -> jobsched::Result<ZkDigest> {
        let text = text.trim();
        match text.split_once(':') {
            Some((user, password)) if !user.is_empty() && password.len() >= 8 => Ok(ZkDigest {
                user: user.to_owned(),
                password: password.to_owned(),
            }),
            _ => Err(jobsched::Error::invalid(
                "zookeeper digest",
                "must be user:password, with a password of at least 8 characters",
            )),
        }
    }

    /// The user name.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The `user:password` text, to hand to another process (a file or its environment).
    pub fn credentials(&self) -> String {
        format!("{}:{}", self.user, self.password)
    }

    /// What the session authenticates with.
    pub(crate) fn auth(&self) -> Vec<u8> {
        self.credentials().into_bytes()
    }
}

fn default_root() -> String {
    "/jobsched".to_owned()
}

fn default_session_timeout() -> Duration {
    Duration::from_secs(10)
}

fn default_connect_timeout() -> Duration {
    Duration::from_secs(5)
}

mod secs {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_secs_f64(f64::deserialize(d)?))
    }
}

impl ZkConfig {
    /// Parses a ZooKeeper connect string: `host:port[,host:port…][/root]` (default root `/jobsched`).
    pub fn parse(connect: &str) -> jobsched::Result<Self> {
        let connect = connect.trim().trim_start_matches("zk://");
        let (hosts, root) = match connect.find('/') {
            Some(i) => (&connect[..i], &connect[i..]),
            None => (connect, ""),
        };
        if hosts.is_empty() || hosts.split(',').any(|h| !h.contains(':')) {
            return Err(jobsched::Error::invalid(
                "zookeeper",
                format!("'{connect}' is not host:port[,host:port…][/root]"),
            ));
        }
        let root = root.trim_end_matches('/');
        Ok(ZkConfig {
            digest: None,
            hosts: hosts.to_owned(),
            root: if root.is_empty() {
                default_root()
            } else {
                root.to_owned()
            },
            session_timeout: default_session_timeout(),
            connect_timeout: default_connect_timeout(),
        })
    }

    /// Sets the digest credentials the session authenticates with (and guards its nodes by).
    pub fn with_digest(mut self, digest: ZkDigest) -> Self {
        self.digest = Some(digest);
        self
    }

    /// Sets the session timeout.
    pub fn with_session_timeout(mut self, d: Duration) -> Self {
        self.session_timeout = d;
        self
    }

    /// Sets the root znode.
    pub fn with_root(mut self, root: impl Into<String>) -> Self {
        self.root = root.into();
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_strings() {
        let c = ZkConfig::parse("h:2181").unwrap();
        assert_eq!((c.hosts.as_str(), c.root.as_str()), ("h:2181", "/jobsched"));
        assert!(ZkConfig::parse("nohost").is_err());
        assert!(ZkConfig::parse("").is_err());
    }
}
