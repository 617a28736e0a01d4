//! The backend conformance suite against the in-process backends.

use jobsched::testing::{ChannelOpener, LocalOpener, MemoryOpener};

jobsched::conformance_tests!(storage, Some(MemoryOpener::default()));
jobsched::conformance_tests!(dispatch, Some(ChannelOpener::default()));
jobsched::conformance_tests!(coord, Some(LocalOpener::default()));
