//! Runs async API calls to completion from a script thread.
//!
//! Scripts are synchronous and run on a thread that is not part of the tokio
//! runtime, so `Handle::block_on` is safe there. Every call races the run's
//! cancellation token (Ctrl-C, SIGTERM) and an overall deadline; the clean-up
//! at the end of a run uses [`Bridge::block_on_cleanup`], which a cancelled run
//! may still use, within its own deadline.

use crate::api::ApiError;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Clone)]
pub struct Bridge {
    handle: tokio::runtime::Handle,
    /// Swappable so a REPL can cancel one evaluation and go on with a fresh token.
    cancel: Arc<std::sync::RwLock<CancellationToken>>,
    deadline: Duration,
}

impl Bridge {
    pub fn new(
        handle: tokio::runtime::Handle,
        cancel: CancellationToken,
        deadline: Duration,
    ) -> Self {
        Self {
            handle,
            cancel: Arc::new(std::sync::RwLock::new(cancel)),
            deadline,
        }
    }

    fn token(&self) -> CancellationToken {
        self.cancel
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Cancels what is running now: the script stops at its next step and any
    /// request in flight is dropped.
    pub fn cancel(&self) {
        self.token().cancel();
    }

    /// A fresh token for the next evaluation (after a cancelled one).
    pub fn reset(&self) {
        *self.cancel.write().unwrap_or_else(|e| e.into_inner()) = CancellationToken::new();
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancel
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .is_cancelled()
    }

    pub fn handle(&self) -> &tokio::runtime::Handle {
        &self.handle
    }

    pub fn block_on<T, F>(&self, fut: F) -> Result<T, ApiError>
    where
        F: Future<Output = Result<T, ApiError>>,
    {
        let cancel = self.token();
        if cancel.is_cancelled() {
            return Err(ApiError::Cancelled);
        }
        self.guard()?;
        let deadline = self.deadline;
        self.handle.block_on(async move {
            tokio::select! {
                biased;
                _ = cancel.cancelled() => Err(ApiError::Cancelled),
                r = tokio::time::timeout(deadline, fut) => r.unwrap_or(Err(timed_out(deadline))),
            }
        })
    }

    /// For clean-up that must happen even after Ctrl-C (revoking a token whose
    /// secret would otherwise be lost): ignores cancellation, keeps a deadline.
    pub fn block_on_cleanup<T, F>(&self, deadline: Duration, fut: F) -> Result<T, ApiError>
    where
        F: Future<Output = Result<T, ApiError>>,
    {
        self.guard()?;
        self.handle.block_on(async move {
            tokio::time::timeout(deadline, fut)
                .await
                .unwrap_or(Err(timed_out(deadline)))
        })
    }

    fn guard(&self) -> Result<(), ApiError> {
        if tokio::runtime::Handle::try_current().is_ok() {
            // Blocking inside the runtime would panic; this is a programming error
            // in the embedding, so report it instead of taking the process down.
            return Err(ApiError::Setup(
                "internal error: a script ran on a runtime thread".into(),
            ));
        }
        Ok(())
    }
}

fn timed_out(after: Duration) -> ApiError {
    ApiError::Timeout {
        method: String::new(),
        path: String::from("(request)"),
        after,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cancelled_call_stops_waiting() {
        let rt = crate::context::tokio_runtime().unwrap();
        let cancel = CancellationToken::new();
        let bridge = Bridge::new(rt.handle().clone(), cancel.clone(), Duration::from_secs(60));
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::scope(|s| {
            s.spawn(|| {
                let r: Result<(), ApiError> = bridge.block_on(async {
                    tx.send(()).unwrap();
                    std::future::pending().await
                });
                assert!(matches!(r, Err(ApiError::Cancelled)));
            });
            rx.recv().unwrap();
            cancel.cancel();
        });
    }
}
