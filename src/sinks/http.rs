//! HTTP for the secret-store sinks (Vault, Kubernetes, GitHub): one request
//! at a time on the run's async runtime, TLS always verified (against the
//! store's own CA file when one is configured), no redirects followed, bodies
//! capped, and retries of what is safe to retry (connection errors, 429 and
//! 5xx) with a short backoff. Nothing here ever logs a header or a body.

use std::time::Duration;

/// How long one request may take, and how many times a failed one is tried.
const TIMEOUT: Duration = Duration::from_secs(30);
const ATTEMPTS: u32 = 4;
/// Largest answer read from a store (a secret, a key, an error).
const MAX_BODY: usize = 1 << 20;

pub struct Http {
    client: reqwest::Client,
    handle: tokio::runtime::Handle,
    /// The store's name, for messages: `Vault`, `Kubernetes`, `GitHub`.
    pub store: &'static str,
}

/// An answer: status and body (at most [`MAX_BODY`] bytes).
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
    /// The body was longer than [`MAX_BODY`] and was cut.
    pub cut: bool,
    /// The server asked to slow down (429; 403 or 400 saying so, as GitHub's
    /// and AWS's rate limits do), and how long to wait if it said.
    pub throttled: Option<Option<Duration>>,
}

impl Answer {
    pub fn json(&self) -> Result<serde_json::Value, String> {
        if self.cut {
            return Err(format!("an answer larger than {} MB", MAX_BODY >> 20));
        }
        serde_json::from_slice(&self.body).map_err(|e| format!("an answer that is not JSON ({e})"))
    }

    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The store's own words for an error: only the fields stores use for
    /// them (`errors`, `message`, `reason`), never the rest of the body (a
    /// server that echoes the request would show the secret, encoded or
    /// not), cleaned of secrets and control characters, shortened.
    pub fn message(&self) -> String {
        let doc: serde_json::Value = serde_json::from_slice(&self.body).unwrap_or_default();
        let mut parts: Vec<String> = Vec::new();
        if let Some(errors) = doc["errors"].as_array() {
            parts.extend(errors.iter().filter_map(|e| e.as_str().map(String::from)));
        }
        for key in ["message", "Message", "reason"] {
            if let Some(m) = doc[key].as_str() {
                parts.push(m.to_string());
            }
        }
        if parts.is_empty() {
            return "(no message)".into();
        }
        let text = crate::redact::cleaned(parts.join("; ").trim());
        let text: String = text.chars().take(300).collect();
        crate::output::escape(&text).into_owned()
    }
}

/// A store's base URL: https (plain http only on loopback), no credentials,
/// no query or fragment (they would break every path built on it).
pub fn base_url(raw: &str, store: &str, var: &str) -> Result<url::Url, String> {
    let url =
        url::Url::parse(raw.trim()).map_err(|e| format!("{store}: {var} is not a URL: {e}"))?;
    let loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    if url.scheme() != "https" && !(url.scheme() == "http" && loopback) {
        return Err(format!(
            "{store}: {var} must be https (plain http only on a loopback address): credentials and secrets would travel in clear"
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("{store}: {var} must not carry credentials"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "{store}: {var} must not have a ?query or #fragment"
        ));
    }
    Ok(url)
}

impl Http {
    /// A client for `store`; `ca` adds a PEM file of trusted roots (the
    /// system's stay trusted unless `only_ca`).
    pub fn new(
        store: &'static str,
        handle: tokio::runtime::Handle,
        ca: Option<&std::path::Path>,
        only_ca: bool,
    ) -> Result<Http, String> {
        crate::api::install_crypto_provider();
        let mut b = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(TIMEOUT)
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("mdops/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = ca {
            let pem = std::fs::read(path)
                .map_err(|e| format!("{store}: cannot read the CA file {}: {e}", path.display()))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                format!(
                    "{store}: the CA file {} holds no certificate: {e}",
                    path.display()
                )
            })?;
            if only_ca {
                b = b.tls_certs_only(certs);
            } else {
                for c in certs {
                    b = b.add_root_certificate(c);
                }
            }
        }
        let client = b
            .build()
            .map_err(|e| format!("{store}: cannot set up HTTPS: {e}"))?;
        Ok(Http {
            client,
            handle,
            store,
        })
    }

    /// Sends a request built by `make` (again for each attempt); retries
    /// connection errors, 429 and 5xx when `retry` says the request may be
    /// repeated. `cancelled` stops waiting between attempts.
    pub fn send(
        &self,
        what: &str,
        retry: bool,
        cancelled: &dyn Fn() -> bool,
        make: &dyn Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<Answer, String> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err("internal error: a store request ran on a runtime thread".into());
        }
        let mut last = String::new();
        let mut wait: Option<Duration> = None;
        for attempt in 0..ATTEMPTS {
            if cancelled() {
                return Err(format!("{}: {what}: interrupted", self.store));
            }
            if attempt > 0 {
                // The server's Retry-After (at most 30 s), else a short backoff;
                // slept in slices so that Ctrl-C is not kept waiting.
                let pause = wait
                    .take()
                    .unwrap_or(Duration::from_millis(100 * (1 << attempt)))
                    .min(Duration::from_secs(30));
                let until = std::time::Instant::now() + pause;
                while std::time::Instant::now() < until && !cancelled() {
                    std::thread::sleep(Duration::from_millis(50).min(pause));
                }
            }
            let request = make(&self.client);
            let exchange = async move {
                let mut response = request.send().await?;
                let status = response.status().as_u16();
                let header = |name: &str| {
                    response
                        .headers()
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string)
                };
                let retry_after = header("retry-after")
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                let limited = status == 429
                    || status == 403
                        && (retry_after.is_some()
                            || header("x-ratelimit-remaining").as_deref() == Some("0"));
                let mut body = Vec::new();
                let mut cut = false;
                while let Some(chunk) = response.chunk().await? {
                    if body.len() + chunk.len() > MAX_BODY {
                        cut = true;
                        break;
                    }
                    body.extend_from_slice(&chunk);
                }
                // AWS says "slow down" with a 400 and the exception's name.
                let aws_throttle = status == 400
                    && String::from_utf8_lossy(&body[..body.len().min(512)])
                        .contains("ThrottlingException");
                let throttled = (limited || aws_throttle).then_some(retry_after);
                Ok::<_, reqwest::Error>(Answer {
                    status,
                    body,
                    cut,
                    throttled,
                })
            };
            // Ctrl-C and SIGTERM stop waiting within a tenth of a second.
            let result = self.handle.block_on(async {
                tokio::select! {
                    r = exchange => Some(r),
                    _ = async {
                        while !cancelled() {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    } => None,
                }
            });
            let Some(result) = result else {
                return Err(format!("{}: {what}: interrupted", self.store));
            };
            match result {
                Ok(a) if retry && (a.throttled.is_some() || a.status >= 500) => {
                    wait = a.throttled.flatten();
                    last = format!("{} {}", a.status, a.message());
                }
                Ok(a) => return Ok(a),
                Err(e) if retry && (e.is_connect() || e.is_timeout() || e.is_request()) => {
                    last = crate::redact::cleaned(&without_url(e));
                }
                Err(e) => {
                    return Err(format!(
                        "{}: {what}: {}",
                        self.store,
                        crate::redact::cleaned(&without_url(e))
                    ))
                }
            }
        }
        Err(format!(
            "{}: {what}: still failing after {ATTEMPTS} attempts: {last}",
            self.store
        ))
    }
}

/// A reqwest error's text without the URL it carries (a path may name more
/// than the operator wants in a log), with its causes.
fn without_url(e: reqwest::Error) -> String {
    crate::redact::with_causes(&e.without_url())
}

/// One path segment, checked and percent-encoded: never empty, `.` or `..`,
/// never a control character (a store path must not turn into another one).
pub fn segment(s: &str, what: &str) -> Result<String, String> {
    if s.is_empty() || s == "." || s == ".." {
        return Err(format!(
            "{what} {s:?}: empty, `.` and `..` are not allowed in a path"
        ));
    }
    if s.chars().any(char::is_control) {
        return Err(format!(
            "{what} {}: holds a control character",
            crate::output::escape(s)
        ));
    }
    Ok(url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20"))
}

/// A `/`-separated path, each segment checked and encoded.
pub fn path(s: &str, what: &str) -> Result<String, String> {
    s.trim_matches('/')
        .split('/')
        .map(|seg| segment(seg, what))
        .collect::<Result<Vec<_>, _>>()
        .map(|v| v.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_messages_come_from_the_error_fields_only() {
        let echo = Answer {
            status: 500,
            body:
                br#"{"message":"internal error","request":{"data":{"TOKEN":"c2VjcmV0LXRva2Vu"}}}"#
                    .to_vec(),
            cut: false,
            throttled: None,
        };
        assert_eq!(echo.message(), "internal error");
        let vault = Answer {
            status: 400,
            body: br#"{"errors":["check-and-set parameter did not match the current version"]}"#
                .to_vec(),
            cut: false,
            throttled: None,
        };
        assert!(vault.message().contains("check-and-set"));
        let html = Answer {
            status: 502,
            body: b"<html>secret-value-echoed</html>".to_vec(),
            cut: false,
            throttled: None,
        };
        assert_eq!(html.message(), "(no message)");
        let big = Answer {
            status: 200,
            body: b"{".to_vec(),
            cut: true,
            throttled: None,
        };
        assert!(big.json().unwrap_err().contains("larger than 1 MB"));
        assert!(
            base_url("https://v.example.com/?x=1", "Vault", "VAULT_ADDR")
                .unwrap_err()
                .contains("?query")
        );
        assert!(base_url("http://v.example.com", "Vault", "VAULT_ADDR")
            .unwrap_err()
            .contains("must be https"));
    }
}
