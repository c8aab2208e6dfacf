//! Every secret this process has seen (the admin token, each minted token and
//! embed session), so that text from outside (an API error body that echoes
//! the Authorization header, a command's output under `set -x`) can be cleaned
//! before it is printed, logged, thrown to a script or put in a table.
//!
//! Process-wide on purpose: a secret must not leak through a path that forgot
//! to ask, and every part of a run (workers, the clean-up, the REPL) shares it.

use aho_corasick::AhoCorasick;
use std::borrow::Cow;
use std::sync::{Arc, RwLock};

/// Shorter values are not worth a search (and would redact innocent text).
const MIN_LEN: usize = 8;

#[derive(Default)]
struct Registry {
    secrets: Vec<String>,
    /// Rebuilt lazily after a registration.
    matcher: Option<Arc<AhoCorasick>>,
}

static REGISTRY: RwLock<Registry> = RwLock::new(Registry {
    secrets: Vec::new(),
    matcher: None,
});

/// Remembers a secret so that [`clean`] removes it from outside text.
pub fn register(secret: &str) {
    let secret = secret.trim();
    if secret.len() < MIN_LEN {
        return;
    }
    let mut r = REGISTRY.write().unwrap_or_else(|e| e.into_inner());
    if !r.secrets.iter().any(|s| s == secret) {
        r.secrets.push(secret.to_string());
        r.matcher = None;
    }
}

fn matcher() -> Option<(Arc<AhoCorasick>, Vec<String>)> {
    {
        let r = REGISTRY.read().unwrap_or_else(|e| e.into_inner());
        if r.secrets.is_empty() {
            return None;
        }
        if let Some(m) = &r.matcher {
            return Some((m.clone(), r.secrets.clone()));
        }
    }
    let mut r = REGISTRY.write().unwrap_or_else(|e| e.into_inner());
    let m = Arc::new(AhoCorasick::new(&r.secrets).ok()?);
    r.matcher = Some(m.clone());
    Some((m, r.secrets.clone()))
}

/// `text` with every registered secret replaced by its redacted form.
pub fn clean(text: &str) -> Cow<'_, str> {
    replace(text, None)
}

/// `text` with every registered secret replaced by `with`.
pub fn clean_with<'a>(text: &'a str, with: &str) -> Cow<'a, str> {
    replace(text, Some(with))
}

fn replace<'a>(text: &'a str, with: Option<&str>) -> Cow<'a, str> {
    let Some((m, secrets)) = matcher() else {
        return Cow::Borrowed(text);
    };
    if !m.is_match(text) {
        return Cow::Borrowed(text);
    }
    let replacements: Vec<String> = secrets
        .iter()
        .map(|s| match with {
            Some(w) => w.to_string(),
            None => crate::secret::SecretString::new(s.clone()).redacted(),
        })
        .collect();
    Cow::Owned(m.replace_all(text, &replacements))
}

/// [`clean`] into an owned string.
pub fn cleaned(text: &str) -> String {
    clean(text).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_secrets_are_replaced() {
        register("s3cr3t-value-for-redaction-test");
        let out = clean("Bearer s3cr3t-value-for-redaction-test was refused");
        assert!(!out.contains("s3cr3t-value"), "{out}");
        assert!(out.contains("<secret "), "{out}");
        assert!(matches!(clean("nothing here"), Cow::Borrowed(_)));
        register("short");
        assert_eq!(clean("a short word"), "a short word");
    }
}
