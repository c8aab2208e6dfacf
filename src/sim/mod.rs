//! A local emulator of the MotherDuck Admin API.
//!
//! `mdops sim` serves it on loopback; `--sandbox` runs it in-process seeded with
//! the demo organization; tests and benchmarks start it on a random port.

pub mod auth;
pub mod errors;
mod faults;
pub mod seed;
pub mod server;
pub mod state;
mod timer;
mod tokens;

pub use seed::Seed;
pub use server::{Behaviour, Faults, Logged, Shared};
pub use state::Org;

use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::oneshot;

/// The accept loop. Hyper serves each connection so that a response marked
/// [`server::DropConnection`] can end its connection without an answer, which
/// is how a lost response looks to a client.
async fn serve(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    mut stopped: oneshot::Receiver<()>,
) {
    use hyper_util::rt::TokioIo;
    use tower::ServiceExt;
    loop {
        let stream = tokio::select! {
            _ = &mut stopped => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service =
            hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let app = app.clone();
                async move {
                    let resp = app
                        .oneshot(req.map(axum::body::Body::new))
                        .await
                        .unwrap_or_else(|never| match never {});
                    if resp.extensions().get::<server::DropConnection>().is_some() {
                        return Err(std::io::Error::other("injected: connection dropped"));
                    }
                    Ok(resp)
                }
            });
        tokio::spawn(async move {
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// A running emulator. Dropping it stops the server.
pub struct Sim {
    pub addr: SocketAddr,
    pub shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
}

impl Sim {
    /// Binds 127.0.0.1:`port` (0 picks a free port) and serves in the current runtime.
    pub async fn start(seed: &Seed, behaviour: Behaviour, port: u16) -> Result<Sim, String> {
        let org = Org::from_seed(seed)?;
        let shared = Arc::new(Shared::new(org, behaviour));
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .map_err(|e| format!("cannot listen on 127.0.0.1:{port}: {e}"))?;
        let addr = listener
            .local_addr()
            .map_err(|e| format!("cannot read the listening address: {e}"))?;
        let (stop, stopped) = oneshot::channel::<()>();
        let app = server::router(shared.clone());
        tokio::spawn(serve(listener, app, stopped));
        Ok(Sim {
            addr,
            shared,
            stop: Some(stop),
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn admin_token(&self) -> String {
        self.shared.org().admin_token.clone()
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// An emulator on its own runtime thread, for synchronous callers (tests,
/// benchmarks). Dropping it stops the server and the thread.
pub struct BackgroundSim {
    sim: Option<Sim>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl BackgroundSim {
    pub fn start(seed: &Seed, behaviour: Behaviour) -> Result<BackgroundSim, String> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let sim = runtime.block_on(Sim::start(seed, behaviour, 0))?;
        Ok(BackgroundSim {
            sim: Some(sim),
            runtime: Some(runtime),
        })
    }

    pub fn sim(&self) -> &Sim {
        self.sim.as_ref().expect("running")
    }

    pub fn url(&self) -> String {
        self.sim().url()
    }

    pub fn admin_token(&self) -> String {
        self.sim().admin_token()
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.sim().shared
    }

    /// Requests that would change state (anything but GET).
    pub fn writes(&self) -> Vec<Logged> {
        self.shared()
            .log()
            .iter()
            .filter(|l| l.method != "GET")
            .cloned()
            .collect()
    }

    pub fn requests(&self) -> Vec<Logged> {
        self.shared().log().clone()
    }

    /// Requests that have arrived, answered or not.
    pub fn arrived(&self) -> usize {
        self.shared()
            .arrived
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }
}

impl Drop for BackgroundSim {
    fn drop(&mut self) {
        drop(self.sim.take());
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(std::time::Duration::from_secs(1));
        }
    }
}
