//! Async client for the MotherDuck Admin REST API.
//!
//! Knows HTTP and the API's shapes; knows nothing of scripts. Every call
//! checks its input against [`rules`] before a request is sent, and every
//! path segment is checked again where the URL is built ([`transport`]), so
//! no name or id, from a script or from a server, can steer a request onto
//! another route.
//!
//! - [`transport`]: the client, one request with retries and pacing, bounded bodies;
//! - [`endpoints`]: the typed operations;
//! - [`recovery`]: creates that are resolved, not replayed, after an ambiguous failure;
//! - [`error`]: one error type, and the reading of error bodies;
//! - [`ducklings`]: merging and comparing Duckling configurations.

mod adaptive;
pub mod base_url;
pub mod ducklings;
mod endpoints;
pub mod error;
pub mod models;
mod recovery;
pub use recovery::orphans_of;
pub mod resilience;
pub mod rules;
pub mod transport;

pub use ducklings::{diff as diff_ducklings, merge as merge_ducklings};
pub use error::ApiError;
pub use models::*;
pub use transport::Client;

use resilience::RetryPolicy;
use std::time::Duration;
use url::Url;

pub const DEFAULT_BASE_URL: &str = "https://api.motherduck.com";

/// The most a response body may hold unless `--max-response-mb` says otherwise.
pub const DEFAULT_MAX_BODY: usize = 8 << 20;

#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub base_url: Url,
    pub token: SecretString,
    pub connect_timeout: Duration,
    pub timeout: Duration,
    pub retry: RetryPolicy,
    /// Requests per second across the whole run; `None` is unlimited.
    pub max_rps: Option<f64>,
    /// Bytes a response body may hold; a longer one is cut off and refused.
    pub max_body: usize,
}

impl ClientConfig {
    pub fn new(base_url: Url, token: SecretString) -> Self {
        Self {
            base_url,
            token,
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(30),
            retry: RetryPolicy::default(),
            max_rps: None,
            max_body: DEFAULT_MAX_BODY,
        }
    }
}

pub fn install_crypto_provider() {
    // Several crates may race to install one; the first wins and that is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
