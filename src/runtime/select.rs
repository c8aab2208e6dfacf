//! Which accounts a selector names: `all`, or a comma-separated list of names
//! and glob patterns. One definition for every workflow (`select::accounts`
//! in scripts calls it), so that a list and a pattern mix, names compare
//! without case (usernames are case-insensitive), and a pattern that matches
//! nothing is said out loud rather than turning a run into a silent no-op.

use super::{Error, Runtime};
use crate::glob;
use std::collections::HashSet;

/// A mistake in a selector: a usage error (exit 2).
fn usage(message: String) -> Error {
    Error::Usage(message)
}

/// Checks a selector's shape without asking the server: `all`, or items that
/// are each a name or a pattern with at least one literal character (a
/// pattern of wildcards alone would stand in for `all`, which must be written).
pub fn check(spec: &str) -> Result<(), String> {
    let spec = spec.trim();
    if spec.is_empty() {
        return Err("it is empty: name accounts (a,b), a pattern (tenant_*) or all".into());
    }
    if spec.eq_ignore_ascii_case("all") {
        return Ok(());
    }
    for part in spec.split(',').map(str::trim) {
        if part.is_empty() {
            return Err(format!("{spec:?} has an empty item"));
        }
        if part.eq_ignore_ascii_case("all") {
            return Err("all means every account: it cannot be combined with other items".into());
        }
        if let Some(c) = part.chars().find(|c| {
            !(c.is_alphanumeric()
                || matches!(c, '_' | '*' | '?' | '[' | ']' | '!' | '-' | '.' | '@'))
        }) {
            return Err(format!(
                "{part:?} contains {c:?}, which no account name or pattern has"
            ));
        }
        if glob::is_pattern(part) {
            glob::check(part)?;
            if !has_literal(part) {
                return Err(format!(
                    "the pattern {part:?} has no fixed character: it would select every account; write all if that is what you mean"
                ));
            }
        }
    }
    Ok(())
}

/// Whether a pattern has a character outside wildcards and classes.
fn has_literal(pattern: &str) -> bool {
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' | '?' => i += 1,
            '[' => {
                // A class: `[` then `!` (negation), then a `]` that comes first
                // is a member, not the end.
                i += 1;
                if chars.get(i) == Some(&'!') {
                    i += 1;
                }
                if chars.get(i) == Some(&']') {
                    i += 1;
                }
                while i < chars.len() && chars[i] != ']' {
                    i += 1;
                }
                i += 1;
            }
            _ => return true,
        }
    }
    false
}

/// Names for a message: the first ten, then how many more.
fn listed(names: &[String]) -> String {
    const SHOWN: usize = 10;
    let mut out = names
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SHOWN {
        out.push_str(&format!(" and {} more", names.len() - SHOWN));
    }
    out
}

impl Runtime {
    /// The accounts `all` and patterns choose from: every known account
    /// ([`Runtime::account_names`]) but those being offboarded (quarantined
    /// in the inventory: a bulk change must not undo the quarantine). Where
    /// the API has no user list, the server's accounts are those with
    /// running Ducklings, which may be people: only the ones the inventory
    /// names are chosen. A name written out is still taken as given.
    fn candidates(&self) -> Result<Vec<String>, Error> {
        let accounts = self.service_accounts()?;
        let complete = accounts.complete;
        let names = self.names_with(accounts)?;
        let inventory = self.inventory_list().unwrap_or_default();
        let key = |name: &str| name.to_lowercase();
        let quarantined: HashSet<String> = inventory
            .iter()
            .filter(|e| e.extra.get("quarantined_at").is_some_and(|v| !v.is_null()))
            .map(|e| key(&e.username))
            .collect();
        let tracked: HashSet<String> = inventory.iter().map(|e| key(&e.username)).collect();
        let mut chosen = Vec::new();
        let (mut people, mut offboarding) = (Vec::new(), Vec::new());
        for name in names {
            if quarantined.contains(&key(&name)) {
                offboarding.push(name);
            } else if !complete && !tracked.contains(&key(&name)) {
                people.push(name);
            } else {
                chosen.push(name);
            }
        }
        if !offboarding.is_empty() {
            self.warn_once(&format!(
                "`all` and patterns leave out accounts being offboarded (quarantined): {}; name one to act on it",
                listed(&offboarding)
            ));
        }
        if people.is_empty() {
            return Ok(chosen);
        }
        let why = "without a user list (GET /v1/users), `all` and patterns choose from the inventory alone: accounts with running Ducklings may be people";
        if chosen.is_empty() {
            return Err(usage(format!(
                "{why}, and the inventory names none of them ({}); `mdops inventory add` the service accounts among them, or name them",
                listed(&people)
            )));
        }
        self.warn_once(&format!(
            "{why}, so these are left out: {}; name an account, or `mdops inventory add` it",
            listed(&people)
        ));
        Ok(chosen)
    }

    /// The accounts `spec` selects, each once (compared without case), in the
    /// order given; a pattern's matches in name order. A pattern that matches
    /// no account is a warning; a selection of names and patterns that ends up
    /// empty is a usage error (`all` may be empty: an organization without
    /// service accounts).
    pub fn select_accounts(&self, spec: &str) -> Result<Vec<String>, Error> {
        check(spec).map_err(|e| usage(format!("invalid account selector: {e}")))?;
        let spec = spec.trim();
        if spec.eq_ignore_ascii_case("all") {
            return self.candidates();
        }
        let parts: Vec<&str> = spec.split(',').map(str::trim).collect();
        let known = if parts.iter().any(|p| glob::is_pattern(p)) {
            self.candidates()?
        } else {
            Vec::new()
        };
        let mut out: Vec<String> = Vec::new();
        let push = |name: &str, out: &mut Vec<String>| {
            if !out.iter().any(|o| o.eq_ignore_ascii_case(name)) {
                out.push(name.to_string());
            }
        };
        let mut unmatched = Vec::new();
        for part in &parts {
            if glob::is_pattern(part) {
                let matched: Vec<&String> =
                    known.iter().filter(|a| glob::matches(part, a)).collect();
                if matched.is_empty() {
                    unmatched.push(*part);
                }
                for a in matched {
                    push(a, &mut out);
                }
            } else {
                push(part, &mut out);
            }
        }
        for p in &unmatched {
            self.warn(&format!("the pattern {p:?} matches no account"));
        }
        if out.is_empty() {
            return Err(usage(format!(
                "{spec:?} selects no account ({} known): check the pattern, or see accounts::list()",
                known.len()
            )));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_are_names_or_patterns_with_something_fixed() {
        for ok in [
            "all",
            "ALL",
            " all ",
            "a,b",
            "tenant_*",
            "tenant_*,etl_pipeline",
            "tenant_0[0-2]*",
            "a?c",
        ] {
            assert!(check(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "*", "**", "?*", "[!x]*", "[!]]*", "*[!]]", "[]-z]*", "*,a", "a,,b", "all,a",
            "a b", "a/b", "[a-",
        ] {
            assert!(check(bad).is_err(), "{bad}");
        }
    }
}
