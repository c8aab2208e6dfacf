//! Glob patterns for account and token names, case-insensitive (usernames
//! are): `*`, `?`, classes and ranges (`[0-2]`, `[!x]`), through `globset`.

use globset::{GlobBuilder, GlobMatcher};
use std::cell::RefCell;
use std::collections::HashMap;

fn compile(pattern: &str) -> Result<GlobMatcher, String> {
    GlobBuilder::new(pattern)
        .case_insensitive(true)
        .literal_separator(false)
        .backslash_escape(true)
        .build()
        .map(|g| g.compile_matcher())
        .map_err(|e| format!("invalid pattern {pattern:?}: {}", e.kind()))
}

thread_local! {
    static CACHE: RefCell<HashMap<String, Option<GlobMatcher>>> = RefCell::new(HashMap::new());
}

/// Whether `text` matches `pattern`. An invalid pattern matches nothing
/// (`check` says why).
pub fn matches(pattern: &str, text: &str) -> bool {
    CACHE.with(|c| {
        let mut cache = c.borrow_mut();
        if cache.len() > 256 {
            cache.clear();
        }
        cache
            .entry(pattern.to_string())
            .or_insert_with(|| compile(pattern).ok())
            .as_ref()
            .is_some_and(|m| m.is_match(text))
    })
}

/// Whether a pattern is valid, and why not.
pub fn check(pattern: &str) -> Result<(), String> {
    compile(pattern).map(|_| ())
}

/// Whether a name is a pattern rather than a literal name.
pub fn is_pattern(text: &str) -> bool {
    text.contains(['*', '?', '['])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(matches("tenant_*", "Tenant_Acme"));
        assert!(matches("*", ""));
        assert!(matches("a?c", "abc"));
        assert!(!matches("a?c", "abbc"));
        assert!(matches("*_pipe*", "etl_pipeline"));
        assert!(!matches("tenant_*", "bi_tool"));
        assert!(matches("a*b*c", "axxbyyc"));
        assert!(!matches("a*b*c", "axxbyy"));
        assert!(matches("tenant_0[0-2]*", "tenant_01x"));
        assert!(!matches("tenant_0[0-2]*", "tenant_05"));
        assert!(matches("t[!x]", "ty"));
        assert!(!matches("t[!x]", "tx"));
        assert!(check("tenant_[").is_err());
        assert!(!matches("tenant_[", "tenant_["));
    }
}
