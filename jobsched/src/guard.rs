//! A future wrapper that contains panics.

use std::future::Future;

/// Polls a future, turning a panic into an error with the panic's message: a handler's bug fails its task
/// (not the executor), a storage backend's bug fails one write (not the engine).
pub(crate) struct Guarded<F: ?Sized>(pub std::pin::Pin<Box<F>>);

impl<F: Future + ?Sized> Future for Guarded<F> {
    type Output = std::result::Result<F::Output, String>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let inner = self.0.as_mut();
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(p) => p.map(Ok),
            Err(payload) => {
                let msg = payload
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".to_owned());
                std::task::Poll::Ready(Err(msg))
            }
        }
    }
}
