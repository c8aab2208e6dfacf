//! The inventory against the server, in one place: `mdops inventory
//! reconcile` and the `reconcile-inventory` workflow both call this.

use super::{Error, Runtime};
use crate::store::{InventoryEntry, Source};
use std::collections::BTreeMap;

/// One account's state: `ok`, `untracked` (on the server, not in the
/// inventory), `adopted`, `gone` (in the inventory, not on the server) or
/// `removed (gone)`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Reconciled {
    pub account: String,
    pub state: &'static str,
}

/// What `reconcile` found, and whether the server's list was complete.
pub struct Reconciliation {
    pub rows: Vec<Reconciled>,
    /// False when the API has no user list: only running accounts were seen.
    pub complete: bool,
}

impl Runtime {
    /// Compares the inventory with the server for the accounts `wanted` keeps;
    /// `adopt` adds untracked accounts, `forget_gone` removes gone entries.
    pub fn reconcile(
        &self,
        adopt: bool,
        forget_gone: bool,
        wanted: &dyn Fn(&str) -> bool,
    ) -> Result<Reconciliation, Error> {
        let accounts = self.service_accounts()?;
        let server: BTreeMap<String, String> = accounts
            .server
            .into_iter()
            .filter(|(_, name)| wanted(name))
            .collect();
        let known: BTreeMap<String, String> = self
            .inventory_list()?
            .into_iter()
            .filter(|e| wanted(&e.username))
            .map(|e| (e.username.to_lowercase(), e.username))
            .collect();
        // Without a user list the server's accounts are those with running
        // Ducklings, people among them: adopted, a person would be in every
        // `all` after. The operator adds service accounts by name instead.
        let adopt = adopt
            && {
                if !accounts.complete && server.keys().any(|k| !known.contains_key(k)) {
                    self.warn_once(
                    "without a user list, accounts with running Ducklings may be people: none is adopted; `mdops inventory add` the service accounts among them",
                );
                }
                accounts.complete
            };
        let mut rows = Vec::new();
        for (key, name) in &server {
            if known.contains_key(key) {
                continue;
            }
            let state = if adopt {
                let mut e = InventoryEntry::new(name);
                e.source = Source::Adopted;
                self.inventory_put(e, "adopt into inventory")?;
                "adopted"
            } else {
                "untracked"
            };
            rows.push(Reconciled {
                account: name.clone(),
                state,
            });
        }
        for (key, name) in &known {
            // Not listed (the API may have no user list): ask about this account directly.
            let state = if server.contains_key(key) || self.account_exists(name)? {
                "ok"
            } else if forget_gone {
                self.inventory_remove(name)?;
                "removed (gone)"
            } else {
                "gone"
            };
            rows.push(Reconciled {
                account: name.clone(),
                state,
            });
        }
        if !self.options.dry_run {
            if let Ok(store) = self.store() {
                let _ = store.inventory_touch(&server.values().cloned().collect::<Vec<_>>());
            }
        }
        rows.sort_by_key(|r| r.account.to_lowercase());
        Ok(Reconciliation {
            rows,
            complete: accounts.complete,
        })
    }
}
