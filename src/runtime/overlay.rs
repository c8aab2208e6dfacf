//! What a dry run has planned so far, so that reads after a planned write see
//! it: a planned account exists (with the API's default Ducklings and no
//! tokens), a planned token is listed, a revoked one is gone, a planned
//! Duckling change reads back, inventory changes show.

use crate::api::{
    CreatedToken, DucklingConfig, DucklingPart, InstanceSize, NewToken, SecretString, Token,
};
use crate::store::InventoryEntry;
use std::collections::{BTreeMap, HashMap, HashSet};

/// Usernames compare case-insensitively, as the service does.
fn key(username: &str) -> String {
    username.to_lowercase()
}

#[derive(Debug, Default)]
pub struct Overlay {
    /// Planned accounts, by lower-cased name.
    created: BTreeMap<String, String>,
    deleted: HashSet<String>,
    /// Planned tokens per account.
    tokens: HashMap<String, Vec<Token>>,
    /// Revoked token ids per account (lower-cased).
    revoked: HashMap<String, HashSet<String>>,
    ducklings: HashMap<String, DucklingConfig>,
    /// Inventory entries written (`Some`) or removed (`None`).
    inventory: BTreeMap<String, Option<InventoryEntry>>,
}

/// What a new service account gets, per the API's documentation (rw
/// `standard`, rs 4 × `standard`, cooldowns at their 60 s minimum).
pub fn new_account_ducklings() -> DucklingConfig {
    DucklingConfig {
        read_write: DucklingPart {
            instance_size: InstanceSize::Standard,
            flock_size: None,
            cooldown_seconds: Some(60),
        },
        read_scaling: DucklingPart {
            instance_size: InstanceSize::Standard,
            flock_size: Some(4),
            cooldown_seconds: Some(60),
        },
    }
}

/// What the overlay knows of an account, before asking the server.
#[derive(Debug, PartialEq)]
pub enum Known {
    /// Planned to be created: the server does not have it yet.
    Planned,
    /// Planned to be deleted.
    Deleted,
    /// The server's answer stands (with the overlay's changes applied).
    Server,
}

impl Overlay {
    pub fn account(&self, username: &str) -> Known {
        let k = key(username);
        if self.deleted.contains(&k) {
            Known::Deleted
        } else if self.created.contains_key(&k) {
            Known::Planned
        } else {
            Known::Server
        }
    }

    pub fn create_account(&mut self, username: &str) {
        let k = key(username);
        self.deleted.remove(&k);
        self.created.insert(k, username.to_string());
    }

    pub fn delete_account(&mut self, username: &str) {
        let k = key(username);
        self.created.remove(&k);
        self.tokens.remove(&k);
        self.ducklings.remove(&k);
        self.deleted.insert(k);
    }

    pub fn add_token(&mut self, username: &str, token: Token) {
        self.tokens.entry(key(username)).or_default().push(token);
    }

    pub fn revoke_token(&mut self, username: &str, token_id: &str) {
        let k = key(username);
        if let Some(planned) = self.tokens.get_mut(&k) {
            planned.retain(|t| !t.id.eq_ignore_ascii_case(token_id));
        }
        self.revoked
            .entry(k)
            .or_default()
            .insert(token_id.to_lowercase());
    }

    /// The server's token list as it would be after the planned writes.
    pub fn tokens(&self, username: &str, mut server: Vec<Token>) -> Vec<Token> {
        let k = key(username);
        if let Some(gone) = self.revoked.get(&k) {
            server.retain(|t| !gone.contains(&t.id.to_lowercase()));
        }
        server.extend(self.tokens.get(&k).into_iter().flatten().cloned());
        server
    }

    pub fn is_revoked(&self, username: &str, token_id: &str) -> bool {
        self.revoked
            .get(&key(username))
            .is_some_and(|s| s.contains(&token_id.to_lowercase()))
    }

    pub fn set_ducklings(&mut self, username: &str, config: DucklingConfig) {
        self.ducklings.insert(key(username), config);
    }

    pub fn ducklings(&self, username: &str) -> Option<DucklingConfig> {
        self.ducklings.get(&key(username)).cloned()
    }

    /// Server account names, with planned ones added and deleted ones removed.
    pub fn accounts(&self, mut names: BTreeMap<String, String>) -> BTreeMap<String, String> {
        for k in &self.deleted {
            names.remove(k);
        }
        for (k, v) in &self.created {
            names.entry(k.clone()).or_insert_with(|| v.clone());
        }
        names
    }

    pub fn put_inventory(&mut self, entry: InventoryEntry) {
        self.inventory.insert(key(&entry.username), Some(entry));
    }

    pub fn remove_inventory(&mut self, username: &str) {
        self.inventory.insert(key(username), None);
    }

    /// An inventory entry as it would be: `Some(Some(e))` written, `Some(None)`
    /// removed, `None` unchanged by the plan.
    pub fn inventory_entry(&self, username: &str) -> Option<Option<InventoryEntry>> {
        self.inventory.get(&key(username)).cloned()
    }

    /// The inventory as it would be after the planned writes.
    pub fn inventory(&self, stored: Vec<InventoryEntry>) -> Vec<InventoryEntry> {
        let mut all: BTreeMap<String, InventoryEntry> =
            stored.into_iter().map(|e| (key(&e.username), e)).collect();
        for (k, change) in &self.inventory {
            match change {
                Some(e) => {
                    all.insert(k.clone(), e.clone());
                }
                None => {
                    all.remove(k);
                }
            }
        }
        all.into_values().collect()
    }
}

/// What a dry run returns for a token it did not mint.
pub(super) fn placeholder(new: &NewToken) -> CreatedToken {
    let now = chrono::Utc::now();
    let ts =
        |d: chrono::DateTime<chrono::Utc>| d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let mut extra = serde_json::Map::new();
    if let Some(d) = &new.description {
        extra.insert("description".into(), d.clone().into());
    }
    CreatedToken {
        meta: Token {
            id: format!("dry-run-{}", uuid::Uuid::new_v4()),
            name: Some(new.name.clone()),
            expire_at: new.ttl.map(|s| ts(now + chrono::Duration::seconds(s))),
            created_ts: ts(now),
            read_only: false,
            token_type: new.token_type.unwrap_or_default(),
            extra,
        },
        token: SecretString::new(format!("dry-run-{}", uuid::Uuid::new_v4())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::TokenType;

    fn token(id: &str) -> Token {
        Token {
            id: id.into(),
            name: Some(id.into()),
            expire_at: None,
            created_ts: "2026-01-01T00:00:00Z".into(),
            read_only: false,
            token_type: TokenType::ReadWrite,
            extra: Default::default(),
        }
    }

    #[test]
    fn planned_writes_show_in_reads() {
        let mut o = Overlay::default();
        o.create_account("Tenant_New");
        assert_eq!(o.account("tenant_new"), Known::Planned);
        o.add_token("tenant_new", token("t1"));
        o.revoke_token("bi_tool", "OLD");
        let listed = o.tokens("bi_tool", vec![token("old"), token("keep")]);
        assert_eq!(
            listed.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(),
            ["keep"]
        );
        assert_eq!(o.tokens("tenant_new", vec![]).len(), 1);
        o.delete_account("tenant_new");
        assert_eq!(o.account("TENANT_NEW"), Known::Deleted);
        let names = o.accounts(BTreeMap::from([("a".to_string(), "A".to_string())]));
        assert_eq!(names.len(), 1);
    }
}
