//! ZooKeeper errors as jobsched's error kinds, in one place.

use jobsched::Error;

pub(crate) const BACKEND: &str = "zookeeper";

/// Converts an error of a ZooKeeper call made while `doing` something. Connection and session failures
/// are retryable (`Unavailable`): the next call opens a new session.
pub(crate) fn zk(e: zookeeper_client::Error, doing: &str) -> Error {
    use zookeeper_client::Error as Z;
    match e {
        Z::ConnectionLoss
        | Z::Timeout
        | Z::NoHosts
        | Z::Throttled
        | Z::SessionExpired
        | Z::SessionMoved
        | Z::ClientClosed
        | Z::NotReadOnly => Error::Unavailable {
            backend: BACKEND,
            message: format!("{doing}: {e}"),
            source: Some(Box::new(e)),
        },
        other => Error::backend(BACKEND, format!("{doing}: {other}")),
    }
}
