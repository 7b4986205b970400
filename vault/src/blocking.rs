//! The one way the library runs file IO, hashing and crypto off the async workers.

use crate::error::{Error, Result};
use std::future::Future;

/// Runs `f` on a blocking thread. It starts now, not when the returned future is first
/// polled, so a caller can start one batch and receive the next while it runs. A panic
/// in `f` is resumed in the caller, as if `f` had run there.
pub(crate) fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> impl Future<Output = Result<T>> {
    let task = tokio::task::spawn_blocking(f);
    async move {
        match task.await {
            Ok(done) => done,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            // Only a runtime shutting down cancels a blocking task before it runs.
            Err(e) => Err(Error::Local(std::io::Error::other(e))),
        }
    }
}
