//! `SecretString`: a token or session that never prints its value. A leaf
//! module: the client, the redactor and the sinks all use it.

use sha2::{Digest, Sha256};
use std::fmt;
use std::sync::Arc;

/// A secret string (admin token, minted token, embed session). It never prints
/// its value: `Debug` and `Display` show a redacted form with a fingerprint.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(Arc<str>);

impl SecretString {
    pub fn new(value: impl Into<String>) -> Self {
        Self(Arc::from(value.into()))
    }
    /// The value itself. Call sites are the few places a secret must leave:
    /// an Authorization header, a sink chosen by the user, `reveal()`.
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// A short, stable, non-reversible identifier (first 12 hex digits of SHA-256).
    pub fn fingerprint(&self) -> String {
        let digest = Sha256::digest(self.0.as_bytes());
        digest[..6].iter().map(|b| format!("{b:02x}")).collect()
    }
    pub fn redacted(&self) -> String {
        format!("<secret {}>", self.fingerprint())
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Display for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}
