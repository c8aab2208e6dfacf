//! How the HTTP client is made: once for the shared runtime, once per lane.

use std::time::Duration;

/// TLS as reqwest would set it up (the platform's verifier, HTTP/2 or 1.1).
pub(super) fn tls_config() -> Result<rustls::ClientConfig, String> {
    use rustls_platform_verifier::ConfigVerifierExt;
    let mut tls = rustls::ClientConfig::with_platform_verifier()
        .map_err(|e| format!("cannot load the system's trust store: {e}"))?;
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(tls)
}

pub(super) fn build_http(
    connect_timeout: Duration,
    timeout: Duration,
    tls: &rustls::ClientConfig,
) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls.clone())
        .connect_timeout(connect_timeout)
        .timeout(timeout)
        .user_agent(concat!("mdops/", env!("CARGO_PKG_VERSION")))
        .pool_idle_timeout(Duration::from_secs(60))
        .tcp_nodelay(true)
        // The Admin API does not redirect; following one could turn a
        // token revocation into an account deletion.
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))
}
