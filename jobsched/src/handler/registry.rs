//! The registry of handlers an executor runs, by type name.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use super::{ShellHandler, TaskHandler};
use crate::error::Result;
use crate::model::{SHELL, check_type_name};

/// Handlers by type name. An executor advertises the names, so the scheduler only sends it tasks it can run.
#[derive(Clone, Default)]
pub struct HandlerRegistry {
    handlers: BTreeMap<String, Arc<dyn TaskHandler>>,
}

impl fmt::Debug for HandlerRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.handlers.keys()).finish()
    }
}

impl HandlerRegistry {
    /// An empty registry.
    pub fn empty() -> Self {
        Self::default()
    }

    /// A registry with the built-in `shell` handler.
    pub fn with_shell() -> Self {
        let mut r = Self::empty();
        r.handlers
            .insert(SHELL.to_owned(), Arc::new(ShellHandler::default()));
        r
    }

    /// Adds (or replaces) the handler for `name` (1–32 bytes of a-z, 0-9, `-`, `_`).
    pub fn register(&mut self, name: &str, handler: Arc<dyn TaskHandler>) -> Result<()> {
        check_type_name(name)?;
        self.handlers.insert(name.to_owned(), handler);
        Ok(())
    }

    /// The handler for `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn TaskHandler>> {
        self.handlers.get(name)
    }

    /// The registered names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.handlers.keys().cloned().collect()
    }
}
