//! The three backends a scheduler or an executor is built from.

use std::sync::Arc;

use crate::coord::Coordinator;
use crate::dispatch::Dispatcher;
use crate::storage::Storage;

/// The three backends a scheduler or an executor is built from.
#[derive(Clone, Debug)]
pub struct Backends {
    /// Durable storage.
    pub storage: Arc<dyn Storage>,
    /// Task and result transport.
    pub dispatcher: Arc<dyn Dispatcher>,
    /// Membership, leadership, locks and settings.
    pub coordinator: Arc<dyn Coordinator>,
}

impl Backends {
    /// In-process backends (memory storage, channel dispatch, local coordination): everything in one
    /// process, nothing to install.
    pub fn in_memory() -> Self {
        Self::in_process(Arc::new(crate::storage::MemoryStorage::new()))
    }

    /// In-process dispatch and coordination around the given storage: one process runs everything, and
    /// what the storage keeps (a file, a database) survives restarts. The all-in-one mode uses this with
    /// the SQLite store of `jobsched-sqlite`.
    pub fn in_process(storage: Arc<dyn Storage>) -> Self {
        Backends {
            storage,
            dispatcher: Arc::new(crate::dispatch::ChannelDispatcher::new()),
            coordinator: Arc::new(crate::coord::LocalCoordinator::new()),
        }
    }
}
