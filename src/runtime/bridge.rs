//! Runs async API calls to completion from a script thread.
//!
//! Scripts are synchronous and run on a thread that is not part of the tokio
//! runtime, so `Handle::block_on` is safe there. Every call races the run's
//! cancellation token (Ctrl-C, SIGTERM) and an overall deadline; the clean-up
//! at the end of a run uses [`Bridge::block_on_cleanup`], which a cancelled run
//! may still use, within its own deadline.
//!
//! The calling thread drives its own requests, on a lane lent for the call
//! ([`crate::api::transport::lane`]): waiting on the shared runtime would cost
//! several thread switches per request.

use crate::api::transport::lane::Lanes;
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
    lanes: Arc<Lanes>,
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
            lanes: Arc::default(),
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
        self.run(async move {
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
        self.run(async move {
            tokio::time::timeout(deadline, fut)
                .await
                .unwrap_or(Err(timed_out(deadline)))
        })
    }

    /// On a lane; on the shared runtime if no lane can be made.
    fn run<T, F>(&self, fut: F) -> Result<T, ApiError>
    where
        F: Future<Output = Result<T, ApiError>>,
    {
        let mut fut = std::pin::pin!(fut);
        match self.lanes.block_on(fut.as_mut()) {
            Ok(out) => out,
            Err(_) => self.handle.block_on(fut),
        }
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
    use crate::api::{Client, ClientConfig, SecretString};
    use std::io::{BufRead, BufReader, Write};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// An HTTP/1.1 server that answers every request with an empty token
    /// list, keeps connections open, and counts the connections it accepted.
    fn server() -> (String, Arc<AtomicUsize>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { return };
                count.fetch_add(1, Ordering::SeqCst);
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(conn.try_clone().unwrap());
                    let mut writer = conn;
                    loop {
                        let mut line = String::new();
                        // A request without a body ends with an empty line.
                        loop {
                            line.clear();
                            match reader.read_line(&mut line) {
                                Ok(0) | Err(_) => return,
                                Ok(_) if line == "\r\n" => break,
                                Ok(_) => {}
                            }
                        }
                        let body = r#"{"tokens":[]}"#;
                        let answer = format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        if writer.write_all(answer.as_bytes()).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (url, accepted)
    }

    #[test]
    fn calls_from_script_threads_keep_their_connections() {
        let rt = crate::context::tokio_runtime().unwrap();
        let (url, accepted) = server();
        let client = Arc::new(
            Client::new(ClientConfig::new(
                url::Url::parse(&url).unwrap(),
                SecretString::new("lane-test-token"),
            ))
            .unwrap(),
        );
        let bridge = Bridge::new(
            rt.handle().clone(),
            CancellationToken::new(),
            Duration::from_secs(10),
        );
        for _ in 0..5 {
            let c = client.clone();
            let tokens = bridge
                .block_on(async move { c.list_tokens("etl").await })
                .unwrap();
            assert!(tokens.is_empty());
        }
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            1,
            "one lane, one connection"
        );
        // Two threads at once need two lanes; afterwards both are kept.
        std::thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| {
                    for _ in 0..20 {
                        let c = client.clone();
                        bridge
                            .block_on(async move { c.list_tokens("etl").await })
                            .unwrap();
                    }
                });
            }
        });
        let after = accepted.load(Ordering::SeqCst);
        assert!(
            (1..=2).contains(&after),
            "{after} connections for 2 threads"
        );
        // A task on the shared runtime uses the shared client, never a lane's.
        let c = client.clone();
        rt.block_on(async move { c.list_tokens("etl").await })
            .unwrap();
        assert_eq!(accepted.load(Ordering::SeqCst), after + 1);
    }

    #[test]
    fn a_cancelled_call_on_a_lane_stops_waiting() {
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
