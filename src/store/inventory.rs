//! The inventory: the service accounts this organization knows it has.

use super::{now, sql, Result, Store};
use rusqlite::{params, OptionalExtension, Row};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// How an account came to be in the inventory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// Created by mdops (`accounts::create`).
    Created,
    /// Added by hand (`inventory::add`, `mdops inventory add`).
    Added,
    /// Read from a file (`mdops inventory import`).
    Imported,
    /// Found on the server and adopted (`mdops inventory reconcile --adopt`).
    Adopted,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Created => "created",
            Source::Added => "added",
            Source::Imported => "imported",
            Source::Adopted => "adopted",
        }
    }
    fn parse(s: &str) -> Source {
        match s {
            "created" => Source::Created,
            "imported" => Source::Imported,
            "adopted" => Source::Adopted,
            _ => Source::Added,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InventoryEntry {
    pub username: String,
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(default)]
    pub purpose: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// Any other metadata the operator keeps (cost centre, ticket, ...).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
    #[serde(default = "added")]
    pub source: Source,
    #[serde(default)]
    pub first_seen: String,
    #[serde(default)]
    pub last_seen: String,
}

fn added() -> Source {
    Source::Added
}

impl InventoryEntry {
    pub fn new(username: &str) -> Self {
        InventoryEntry {
            username: username.to_string(),
            owner: None,
            purpose: None,
            tags: vec![],
            extra: Map::new(),
            source: Source::Added,
            first_seen: String::new(),
            last_seen: String::new(),
        }
    }
}

fn from_row(r: &Row) -> rusqlite::Result<InventoryEntry> {
    let tags: String = r.get("tags")?;
    let extra: String = r.get("extra")?;
    Ok(InventoryEntry {
        username: r.get("username")?,
        owner: r.get("owner")?,
        purpose: r.get("purpose")?,
        tags: serde_json::from_str(&tags).unwrap_or_default(),
        extra: serde_json::from_str(&extra).unwrap_or_default(),
        source: Source::parse(&r.get::<_, String>("source")?),
        first_seen: r.get("first_seen")?,
        last_seen: r.get("last_seen")?,
    })
}

/// Metadata given replaces, metadata not given stays; `first_seen` and the
/// original source stay.
const UPSERT: &str =
    "INSERT INTO inventory (username, owner, purpose, tags, extra, source, first_seen, last_seen)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)
     ON CONFLICT (username) DO UPDATE SET
        owner = COALESCE(excluded.owner, owner),
        purpose = COALESCE(excluded.purpose, purpose),
        tags = CASE WHEN excluded.tags = '[]' THEN tags ELSE excluded.tags END,
        extra = json_patch(extra, excluded.extra),
        last_seen = excluded.last_seen";

impl Store {
    pub fn inventory_list(&self) -> Result<Vec<InventoryEntry>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare("SELECT * FROM inventory ORDER BY username COLLATE NOCASE")
            .map_err(sql)?;
        let rows = stmt.query_map([], from_row).map_err(sql)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(sql)
    }

    pub fn inventory_get(&self, username: &str) -> Result<Option<InventoryEntry>> {
        self.conn()
            .prepare_cached("SELECT * FROM inventory WHERE username = ?1")
            .map_err(sql)?
            .query_row([username], from_row)
            .optional()
            .map_err(sql)
    }

    /// Adds an entry or updates one: metadata given replaces what was there,
    /// metadata not given is kept; `first_seen` and the original source stay.
    pub fn inventory_upsert(&self, e: &InventoryEntry) -> Result<InventoryEntry> {
        let t = now();
        {
            let conn = self.conn();
            conn.prepare_cached(UPSERT)
                .map_err(sql)?
                .execute(params![
                    e.username,
                    e.owner,
                    e.purpose,
                    serde_json::to_string(&e.tags).expect("tags serialize"),
                    serde_json::to_string(&e.extra).expect("extra serializes"),
                    e.source.as_str(),
                    t,
                ])
                .map_err(sql)?;
        }
        Ok(self.inventory_get(&e.username)?.expect("just written"))
    }

    /// Upserts every entry in one transaction: all of them, or none.
    pub fn inventory_upsert_all(&self, entries: &[InventoryEntry]) -> Result<()> {
        let t = now();
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(sql)?;
        for e in entries {
            tx.prepare_cached(UPSERT)
                .map_err(sql)?
                .execute(params![
                    e.username,
                    e.owner,
                    e.purpose,
                    serde_json::to_string(&e.tags).expect("tags serialize"),
                    serde_json::to_string(&e.extra).expect("extra serializes"),
                    e.source.as_str(),
                    t,
                ])
                .map_err(sql)?;
        }
        tx.commit().map_err(sql)
    }

    pub fn inventory_remove(&self, username: &str) -> Result<bool> {
        let n = self
            .conn()
            .prepare_cached("DELETE FROM inventory WHERE username = ?1")
            .map_err(sql)?
            .execute([username])
            .map_err(sql)?;
        Ok(n > 0)
    }

    /// Marks accounts as seen on the server now.
    pub fn inventory_touch(&self, usernames: &[String]) -> Result<()> {
        let t = now();
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(sql)?;
        for u in usernames {
            tx.prepare_cached("UPDATE inventory SET last_seen = ?2 WHERE username = ?1")
                .map_err(sql)?
                .execute(params![u, t])
                .map_err(sql)?;
        }
        tx.commit().map_err(sql)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upsert_merges_and_keeps_identity() {
        let s = Store::in_memory().unwrap();
        let mut e = InventoryEntry::new("Tenant_A");
        e.owner = Some("ops".into());
        e.tags = vec!["tenant".into()];
        e.source = Source::Created;
        let first = s.inventory_upsert(&e).unwrap();
        let mut again = InventoryEntry::new("tenant_a");
        again.purpose = Some("embedding".into());
        let merged = s.inventory_upsert(&again).unwrap();
        assert_eq!(merged.username, "Tenant_A");
        assert_eq!(merged.owner.as_deref(), Some("ops"));
        assert_eq!(merged.purpose.as_deref(), Some("embedding"));
        assert_eq!(merged.tags, ["tenant"]);
        assert_eq!(merged.source, Source::Created);
        assert_eq!(merged.first_seen, first.first_seen);
        assert_eq!(s.inventory_list().unwrap().len(), 1);
        assert!(s.inventory_remove("TENANT_A").unwrap());
        assert!(s.inventory_get("tenant_a").unwrap().is_none());
    }
}
