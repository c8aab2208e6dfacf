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

/// What a selection is for: a workflow that acts on the accounts, or one
/// that only reads them (a report sees every account there is to see).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Act,
    Read,
}

/// What `all` and patterns may choose, and what they leave out (for acting).
struct Candidates {
    chosen: Vec<String>,
    /// Quarantined by `offboard-account`: a bulk change must not undo that.
    offboarding: Vec<String>,
    /// Without a user list: running Ducklings the inventory does not name.
    people: Vec<String>,
}

/// Whether an inventory entry is being offboarded: its `quarantined_at` is a
/// time (what `offboard-account` writes; any other value is not a quarantine).
fn quarantined(e: &crate::store::InventoryEntry) -> bool {
    e.extra
        .get("quarantined_at")
        .and_then(|v| v.as_str())
        .is_some_and(|t| chrono::DateTime::parse_from_rfc3339(t).is_ok())
}

impl Runtime {
    /// The accounts `all` and patterns choose from: every known account
    /// ([`Runtime::account_names`]). To act on, not those being offboarded,
    /// and where the API has no user list (the server's accounts are then
    /// those with running Ducklings, which may be people) only the
    /// inventory's. The inventory must be readable to know that.
    fn candidates(&self, purpose: Purpose) -> Result<Candidates, Error> {
        let accounts = self.service_accounts()?;
        let complete = accounts.complete;
        let mut c = Candidates {
            chosen: Vec::new(),
            offboarding: Vec::new(),
            people: Vec::new(),
        };
        if purpose == Purpose::Read {
            c.chosen = self.names_with(accounts)?;
            return Ok(c);
        }
        let inventory = self.inventory_seen(&accounts)?;
        let names = super::reads::merged(accounts, &inventory);
        let key = |name: &str| name.to_lowercase();
        let offboarding: HashSet<String> = inventory
            .iter()
            .filter(|e| quarantined(e))
            .map(|e| key(&e.username))
            .collect();
        let tracked: HashSet<String> = inventory.iter().map(|e| key(&e.username)).collect();
        for name in names {
            if offboarding.contains(&key(&name)) {
                c.offboarding.push(name);
            } else if !complete && !tracked.contains(&key(&name)) {
                c.people.push(name);
            } else {
                c.chosen.push(name);
            }
        }
        Ok(c)
    }

    /// Says which accounts the selection left out that `reached` would have
    /// taken (those a pattern matches and no name names).
    fn left_out(&self, c: &Candidates, reached: impl Fn(&str) -> bool) {
        let offboarding: Vec<String> = c
            .offboarding
            .iter()
            .filter(|n| reached(n))
            .cloned()
            .collect();
        if !offboarding.is_empty() {
            self.warn_once(&format!(
                "`all` and patterns leave out accounts being offboarded (quarantined): {}; name one to act on it",
                listed(&offboarding)
            ));
        }
        let people: Vec<String> = c.people.iter().filter(|n| reached(n)).cloned().collect();
        if !people.is_empty() {
            self.warn_once(&format!(
                "{NO_USER_LIST}, so these are left out: {}; name an account, or `mdops inventory add` it",
                listed(&people)
            ));
        }
    }

    /// The accounts `spec` selects, each once (compared without case), in the
    /// order given; a pattern's matches in name order. A pattern that matches
    /// no account is a warning; a selection of names and patterns that ends up
    /// empty is a usage error (`all` may be empty: an organization without
    /// service accounts; but not where the API has no user list and running
    /// Ducklings were left out, or a cron job would quietly do nothing).
    pub fn select_accounts(&self, spec: &str, purpose: Purpose) -> Result<Vec<String>, Error> {
        check(spec).map_err(|e| usage(format!("invalid account selector: {e}")))?;
        let spec = spec.trim();
        if spec.eq_ignore_ascii_case("all") {
            let c = self.candidates(purpose)?;
            if c.chosen.is_empty() && !c.people.is_empty() {
                let but = if c.offboarding.is_empty() {
                    ""
                } else {
                    " but accounts being offboarded"
                };
                return Err(usage(format!(
                    "{NO_USER_LIST} ({}), and it names no account to act on{but}; `mdops inventory add` the service accounts among them, or name them",
                    listed(&c.people)
                )));
            }
            self.left_out(&c, |_| true);
            return Ok(c.chosen);
        }
        let parts: Vec<&str> = spec.split(',').map(str::trim).collect();
        let patterns: Vec<&str> = parts
            .iter()
            .copied()
            .filter(|p| glob::is_pattern(p))
            .collect();
        let c = if patterns.is_empty() {
            None
        } else {
            Some(self.candidates(purpose)?)
        };
        let known: &[String] = c.as_ref().map_or(&[], |c| &c.chosen);
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
        if let Some(c) = &c {
            let named = |n: &str| parts.iter().any(|p| p.eq_ignore_ascii_case(n));
            self.left_out(c, |n| {
                !named(n) && patterns.iter().any(|p| glob::matches(p, n))
            });
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

const NO_USER_LIST: &str = "without a user list (GET /v1/users), `all` and patterns choose from the inventory alone: accounts with running Ducklings may be people";

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
