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
