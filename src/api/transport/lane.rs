//! Lanes: a script thread drives its own requests.
//!
//! A script thread that waits on the shared runtime needs that runtime's
//! threads to write its request, read the answer and wake it up again: several
//! thread switches for every request, which at concurrency 32 cost more CPU
//! than the request itself. A lane is a current-thread runtime that the waiting
//! thread drives itself, with an HTTP client of its own for each API client, so
//! a request costs one wake-up: the answer arriving.
//!
//! Lanes are lent from a [`Lanes`] pool to one call at a time, so their open
//! connections outlive the threads that use them. A connection belongs to the
//! runtime that opened it and only makes progress while that runtime is driven;
//! [`http`] therefore hands a lane's client only to code that runs on that very
//! lane, and anything else (a task on the shared runtime) gets the shared one.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

/// A lane's HTTP clients, by the id of the API client they serve.
type Clients = Mutex<HashMap<u64, reqwest::Client>>;

struct Lane {
    rt: Option<tokio::runtime::Runtime>,
    clients: Arc<Clients>,
}

impl Lane {
    fn new() -> std::io::Result<Lane> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        Ok(Lane {
            rt: Some(rt),
            clients: Arc::default(),
        })
    }
}

impl Drop for Lane {
    fn drop(&mut self) {
        // Never blocks, so a pool may be dropped anywhere, even on a runtime thread.
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// The idle lanes of one bridge.
#[derive(Default)]
pub struct Lanes {
    idle: Mutex<Vec<Lane>>,
}

thread_local! {
    /// The lane this thread is driving, while it drives one.
    static CURRENT: RefCell<Option<(tokio::runtime::Id, Arc<Clients>)>> =
        const { RefCell::new(None) };
}

/// Marks this thread as driving a lane, until dropped (also when unwinding).
struct Driving(Option<(tokio::runtime::Id, Arc<Clients>)>);

impl Driving {
    fn enter(id: tokio::runtime::Id, clients: Arc<Clients>) -> Driving {
        Driving(CURRENT.with(|c| c.borrow_mut().replace((id, clients))))
    }
}

impl Drop for Driving {
    fn drop(&mut self) {
        let before = self.0.take();
        CURRENT.with(|c| *c.borrow_mut() = before);
    }
}

impl Lanes {
    /// Runs `fut` to completion on this thread, on a lane of its own. Must not
    /// be called from a runtime thread (`Handle::block_on` rules). An error
    /// means no lane could be made (no file descriptor for its poller).
    pub fn block_on<F: Future>(&self, fut: F) -> std::io::Result<F::Output> {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let lane = match idle {
            Some(lane) => lane,
            None => Lane::new()?,
        };
        let rt = lane.rt.as_ref().expect("a lane keeps its runtime");
        let out = {
            let _driving = Driving::enter(rt.handle().id(), lane.clients.clone());
            rt.block_on(async {
                // An idle lane's connections have not run: a yield polls for
                // what happened meanwhile (a server closing one), so the request
                // is not written on a closed connection but goes on a new one.
                tokio::task::yield_now().await;
                fut.await
            })
        };
        self.idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(lane);
        Ok(out)
    }

    /// Lanes kept for reuse.
    #[cfg(test)]
    pub fn idle(&self) -> usize {
        self.idle.lock().unwrap().len()
    }
}

/// The HTTP client of API client `id` on the lane this code runs on, made by
/// `build` the first time; `None` when this code does not run on a lane.
pub(super) fn http(
    id: u64,
    build: impl FnOnce() -> Option<reqwest::Client>,
) -> Option<reqwest::Client> {
    let here = tokio::runtime::Handle::try_current().ok()?.id();
    CURRENT.with(|c| {
        let current = c.borrow();
        let (lane, clients) = current.as_ref()?;
        if *lane != here {
            return None;
        }
        let mut clients = clients.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(http) = clients.get(&id) {
            return Some(http.clone());
        }
        let http = build()?;
        clients.insert(id, http.clone());
        Some(http)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lane_is_kept_and_its_client_is_only_given_on_it() {
        crate::api::install_crypto_provider();
        let lanes = Lanes::default();
        let built = std::sync::atomic::AtomicUsize::new(0);
        let build = || {
            built.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            reqwest::Client::builder().build().ok()
        };
        assert!(http(1, build).is_none(), "off a lane");
        for _ in 0..3 {
            let got = lanes.block_on(async { http(1, build).is_some() }).unwrap();
            assert!(got);
        }
        assert_eq!(built.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert_eq!(lanes.idle(), 1);
        // Code in another runtime's context on this thread gets no lane client.
        let other = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let elsewhere = lanes
            .block_on(async {
                let _inside = other.handle().enter();
                http(1, build).is_none()
            })
            .unwrap();
        assert!(elsewhere);
        assert_eq!(built.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    /// A server that answers one request per connection, then closes it when
    /// told to (after the client's call has returned: while its lane is idle)
    /// and says it did.
    fn closing_server() -> (
        String,
        std::sync::mpsc::Sender<()>,
        std::sync::mpsc::Receiver<()>,
    ) {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let (close, close_rx) = std::sync::mpsc::channel::<()>();
        let (closed, closed_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { return };
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        break;
                    }
                    if let Some(n) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = n.trim().parse().unwrap();
                    }
                    if line == "\r\n" {
                        let mut body = vec![0; length];
                        std::io::Read::read_exact(&mut reader, &mut body).unwrap();
                        let answer = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}";
                        conn.write_all(answer.as_bytes()).unwrap();
                        break;
                    }
                }
                if close_rx.recv().is_err() {
                    return;
                }
                drop(reader);
                drop(conn);
                if closed.send(()).is_err() {
                    return;
                }
            }
        });
        (url, close, closed_rx)
    }

    #[test]
    fn a_connection_closed_while_the_lane_was_idle_is_not_used() {
        use crate::api::{Client, ClientConfig, SecretString};
        let (url, close, closed) = closing_server();
        let mut config = ClientConfig::new(
            url::Url::parse(&url).unwrap(),
            SecretString::new("lane-test-token"),
        );
        // A POST on a dead connection would be ambiguous: no retry may hide it.
        config.retry.max_attempts = 1;
        let client = Client::new(config).unwrap();
        let lanes = Lanes::default();
        for _ in 0..3 {
            let sent = lanes
                .block_on(client.send(
                    reqwest::Method::POST,
                    &["v1", "x"],
                    &[],
                    Some(&serde_json::json!({})),
                    super::super::Auth::Admin,
                ))
                .unwrap();
            assert!(sent.is_ok(), "{:?}", sent.err());
            // The server closes it now, while the lane is idle.
            close.send(()).unwrap();
            closed.recv().unwrap();
        }
    }
}
