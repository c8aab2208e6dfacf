//! The inventory: the service accounts this organization knows it has.

use super::conn::Conn;
use super::db::{p, Row, Sql};
use super::{now, Result, Store};
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

fn from_row(r: &Row) -> Result<InventoryEntry> {
    Ok(InventoryEntry {
        username: r.text("username")?,
        owner: r.opt_text("owner")?,
        purpose: r.opt_text("purpose")?,
        tags: serde_json::from_str(&r.text("tags")?).unwrap_or_default(),
        extra: serde_json::from_str(&r.text("extra")?).unwrap_or_default(),
        source: Source::parse(&r.text("source")?),
        first_seen: r.text("first_seen")?,
        last_seen: r.text("last_seen")?,
    })
}

/// Metadata given replaces, metadata not given stays; `first_seen` and the
/// original source stay. `extra` is merged as a JSON merge patch (RFC 7396).
const UPSERT: Sql = Sql::pg(
    "INSERT INTO inventory (username, owner, purpose, tags, extra, source, first_seen, last_seen)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)
     ON CONFLICT (username) DO UPDATE SET
        owner = COALESCE(excluded.owner, owner),
        purpose = COALESCE(excluded.purpose, purpose),
        tags = CASE WHEN excluded.tags = '[]' THEN tags ELSE excluded.tags END,
        extra = json_patch(extra, excluded.extra),
        last_seen = excluded.last_seen",
    "INSERT INTO inventory (username, owner, purpose, tags, extra, source, first_seen, last_seen)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
     ON CONFLICT (username) DO UPDATE SET
        owner = COALESCE(excluded.owner, inventory.owner),
        purpose = COALESCE(excluded.purpose, inventory.purpose),
        tags = CASE WHEN excluded.tags = '[]' THEN inventory.tags ELSE excluded.tags END,
        extra = mdops_json_patch(inventory.extra::jsonb, excluded.extra::jsonb)::text,
        last_seen = excluded.last_seen",
);

fn upsert(c: &mut Conn, e: &InventoryEntry, t: &str) -> Result<()> {
    let tags = serde_json::to_string(&e.tags).expect("tags serialize");
    let extra = serde_json::to_string(&e.extra).expect("extra serializes");
    c.exec(
        &UPSERT,
        p![
            &e.username,
            &e.owner,
            &e.purpose,
            &tags,
            &extra,
            e.source.as_str(),
            t
        ],
    )?;
    Ok(())
}

const GET: Sql = Sql::same("SELECT * FROM inventory WHERE username = ?1");

impl Store {
    pub fn inventory_list(&self) -> Result<Vec<InventoryEntry>> {
        self.conn()
            .query(
                &Sql::pg(
                    "SELECT * FROM inventory ORDER BY username COLLATE NOCASE",
                    "SELECT * FROM inventory ORDER BY lower(username::text COLLATE \"C\") COLLATE \"C\"",
                ),
                &[],
            )?
            .iter()
            .map(from_row)
            .collect()
    }

    pub fn inventory_get(&self, username: &str) -> Result<Option<InventoryEntry>> {
        self.conn()
            .query_opt(&GET, p![username])?
            .map(|r| from_row(&r))
            .transpose()
    }

    /// Adds an entry or updates one: metadata given replaces what was there,
    /// metadata not given is kept; `first_seen` and the original source stay.
    pub fn inventory_upsert(&self, e: &InventoryEntry) -> Result<InventoryEntry> {
        let t = now();
        let mut conn = self.conn();
        upsert(&mut conn, e, &t)?;
        conn.query_opt(&GET, p![&e.username])?
            .map(|r| from_row(&r))
            .transpose()?
            .ok_or_else(|| super::StoreError(format!("{} vanished as it was written", e.username)))
    }

    /// Upserts every entry in one transaction: all of them, or none.
    pub fn inventory_upsert_all(&self, entries: &[InventoryEntry]) -> Result<()> {
        let t = now();
        self.conn().transaction(|c| {
            for e in entries {
                upsert(c, e, &t)?;
            }
            Ok(())
        })
    }

    pub fn inventory_remove(&self, username: &str) -> Result<bool> {
        let n = self.conn().exec(
            &Sql::same("DELETE FROM inventory WHERE username = ?1"),
            p![username],
        )?;
        Ok(n > 0)
    }

    /// Marks accounts as seen on the server now.
    pub fn inventory_touch(&self, usernames: &[String]) -> Result<()> {
        let t = now();
        self.conn().transaction(|c| {
            for u in usernames {
                c.exec(
                    &Sql::same("UPDATE inventory SET last_seen = ?2 WHERE username = ?1"),
                    p![u, &t],
                )?;
            }
            Ok(())
        })
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
