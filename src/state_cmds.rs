//! `mdops inventory`, `mdops audit`, `mdops journal`: the local state from the
//! command line.

use crate::app::{api_for, exit, out, runtime, Failure};
use crate::cli::{AuditArgs, ExportFormat, InventoryCmd};
use crate::script::host::OutputFormat;
use crate::script::table::Table;
use crate::settings::Settings;
use crate::store::{AuditFilter, InventoryEntry, Source, Store};
use serde::Serialize;
use std::collections::BTreeMap;

/// The inventory's columns, in the order `list` and `export` show them.
const INVENTORY_COLUMNS: [&str; 7] = [
    "username",
    "owner",
    "purpose",
    "tags",
    "source",
    "first_seen",
    "last_seen",
];

fn open(settings: &Settings) -> Result<Store, Failure> {
    Store::open(&settings.data_dir, settings.profile.as_deref()).map_err(|e| Failure {
        code: exit::SCRIPT,
        message: format!("error: the local state is unavailable: {e}\n"),
    })
}

fn state_err(e: crate::store::StoreError) -> Failure {
    Failure {
        code: exit::SCRIPT,
        message: format!("error: {e}\n"),
    }
}

/// Prints rows as an aligned table (these columns) or as one JSON document.
fn show<T: Serialize>(rows: &[T], columns: &[&str], output: OutputFormat) {
    let json = serde_json::to_value(rows).expect("rows serialize");
    match output {
        OutputFormat::Json => out(&format!(
            "{}\n",
            serde_json::to_string_pretty(&json).expect("JSON")
        )),
        OutputFormat::Text | OutputFormat::Csv => {
            let dynamic: rhai::Array = json
                .as_array()
                .into_iter()
                .flatten()
                .map(crate::script::convert::to_dynamic)
                .collect();
            if dynamic.is_empty() {
                out("(none)\n");
                return;
            }
            let table = Table::new(
                dynamic,
                Some(columns.iter().map(|c| c.to_string()).collect()),
            );
            out(&table.render());
        }
    }
}

pub fn inventory(settings: &Settings, action: InventoryCmd) -> Result<i32, Failure> {
    let store = open(settings)?;
    match action {
        InventoryCmd::List { output } => {
            let entries = store.inventory_list().map_err(state_err)?;
            show(&entries, &INVENTORY_COLUMNS, output);
        }
        InventoryCmd::Add {
            username,
            owner,
            purpose,
            tags,
        } => {
            crate::api::rules::path_username(&username).map_err(|v| Failure::usage(v.message))?;
            let mut e = InventoryEntry::new(&username);
            e.owner = owner;
            e.purpose = purpose;
            e.tags = tags;
            let stored = store.inventory_upsert(&e).map_err(state_err)?;
            out(&format!("added {}\n", stored.username));
        }
        InventoryCmd::Remove { username } => {
            if !store.inventory_remove(&username).map_err(state_err)? {
                return Err(Failure::usage(format!(
                    "{username} is not in the inventory"
                )));
            }
            out(&format!("removed {username}\n"));
        }
        InventoryCmd::Import { file } => {
            let entries = read_import(&file)?;
            // All or nothing: a bad line anywhere imports nothing.
            for e in &entries {
                store.inventory_upsert(e).map_err(state_err)?;
            }
            out(&format!(
                "imported {} entries from {}\n",
                entries.len(),
                file.display()
            ));
        }
        InventoryCmd::Export { format } => {
            let entries = store.inventory_list().map_err(state_err)?;
            match format {
                ExportFormat::Json => out(&format!(
                    "{}\n",
                    serde_json::to_string_pretty(&entries).expect("JSON")
                )),
                ExportFormat::Csv => {
                    let mut w = csv::Writer::from_writer(Vec::new());
                    let _ = w.write_record(INVENTORY_COLUMNS);
                    for e in &entries {
                        let _ = w.write_record([
                            e.username.as_str(),
                            e.owner.as_deref().unwrap_or(""),
                            e.purpose.as_deref().unwrap_or(""),
                            &e.tags.join(";"),
                            e.source.as_str(),
                            &e.first_seen,
                            &e.last_seen,
                        ]);
                    }
                    out(&String::from_utf8_lossy(
                        &w.into_inner().unwrap_or_default(),
                    ));
                }
            }
        }
        InventoryCmd::Reconcile { adopt, output } => {
            return reconcile(settings, &store, adopt, output)
        }
    }
    Ok(exit::OK)
}

#[derive(serde::Deserialize)]
struct CsvRow {
    username: String,
    #[serde(default)]
    owner: Option<String>,
    #[serde(default)]
    purpose: Option<String>,
    #[serde(default)]
    tags: Option<String>,
}

fn read_import(file: &std::path::Path) -> Result<Vec<InventoryEntry>, Failure> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| Failure::usage(format!("cannot read {}: {e}", file.display())))?;
    let bad = |line: String, why: String| {
        Failure::usage(format!(
            "{}:{line}: {why} (nothing was imported)",
            file.display()
        ))
    };
    let mut entries: Vec<InventoryEntry> = if text.trim_start().starts_with('[') {
        serde_json::from_str(&text).map_err(|e| bad(e.line().to_string(), e.to_string()))?
    } else {
        let mut rdr = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .from_reader(text.as_bytes());
        let mut v = Vec::new();
        for (i, row) in rdr.deserialize::<CsvRow>().enumerate() {
            let row = row.map_err(|e| bad((i + 2).to_string(), e.to_string()))?;
            let mut e = InventoryEntry::new(&row.username);
            e.owner = row.owner.filter(|s| !s.is_empty());
            e.purpose = row.purpose.filter(|s| !s.is_empty());
            e.tags = row
                .tags
                .unwrap_or_default()
                .split([';', ','])
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(String::from)
                .collect();
            v.push(e);
        }
        v
    };
    for (i, e) in entries.iter_mut().enumerate() {
        crate::api::rules::path_username(&e.username)
            .map_err(|v| bad(format!("entry {}", i + 1), v.message))?;
        e.source = Source::Imported;
    }
    Ok(entries)
}

#[derive(Serialize)]
struct Reconciled {
    /// On the server (user list or running Ducklings) but not in the inventory.
    missing_from_inventory: Vec<String>,
    /// In the inventory, but the server no longer has the account.
    gone_from_server: Vec<String>,
    adopted: Vec<String>,
}

fn reconcile(
    settings: &Settings,
    store: &Store,
    adopt: bool,
    output: OutputFormat,
) -> Result<i32, Failure> {
    let rt = runtime()?;
    let (api, _sim) = api_for(settings, &rt)?;
    let client = api.client().map_err(|e| Failure::usage(e.to_string()))?;
    let inventory = store.inventory_list().map_err(state_err)?;
    let api_failure = |e: crate::api::ApiError| Failure {
        code: if e.is_auth() {
            exit::AUTH
        } else {
            exit::SCRIPT
        },
        message: format!("error: {e}\n"),
    };
    let (server, gone) = rt
        .block_on(async {
            let mut server: BTreeMap<String, String> = BTreeMap::new();
            for u in client.list_users().await?.unwrap_or_default() {
                if u.is_service_account == Some(true) && u.is_deprovisioned != Some(true) {
                    server.insert(u.username.to_lowercase(), u.username);
                }
            }
            for a in client.active_accounts().await? {
                server
                    .entry(a.username.to_lowercase())
                    .or_insert(a.username);
            }
            let mut gone = Vec::new();
            for e in &inventory {
                if server.contains_key(&e.username.to_lowercase()) {
                    continue;
                }
                // Not listed (the API may have no user list): ask about this account directly.
                match client.get_ducklings(&e.username).await {
                    Ok(_) => {}
                    Err(err) if err.is_not_found() => gone.push(e.username.clone()),
                    Err(err) => return Err(err),
                }
            }
            Ok((server, gone))
        })
        .map_err(api_failure)?;
    let known: std::collections::HashSet<String> = inventory
        .iter()
        .map(|e| e.username.to_lowercase())
        .collect();
    let missing: Vec<String> = server
        .iter()
        .filter(|(k, _)| !known.contains(*k))
        .map(|(_, v)| v.clone())
        .collect();
    let mut adopted = Vec::new();
    if adopt {
        for name in &missing {
            let mut e = InventoryEntry::new(name);
            e.source = Source::Adopted;
            store.inventory_upsert(&e).map_err(state_err)?;
            adopted.push(name.clone());
        }
    }
    let seen: Vec<String> = server.values().cloned().collect();
    store.inventory_touch(&seen).map_err(state_err)?;
    let report = Reconciled {
        missing_from_inventory: missing,
        gone_from_server: gone,
        adopted,
    };
    match output {
        OutputFormat::Json => out(&format!(
            "{}\n",
            serde_json::to_string_pretty(&report).expect("JSON")
        )),
        OutputFormat::Text | OutputFormat::Csv => {
            let list = |v: &[String]| {
                if v.is_empty() {
                    "(none)".to_string()
                } else {
                    v.join(", ")
                }
            };
            let mut text = format!(
                "on the server, not in the inventory: {}\nin the inventory, gone from the server: {}\n",
                list(&report.missing_from_inventory),
                list(&report.gone_from_server)
            );
            if adopt {
                text.push_str(&format!("adopted: {}\n", list(&report.adopted)));
            }
            out(&text);
        }
    }
    Ok(exit::OK)
}

pub fn audit(settings: &Settings, args: AuditArgs) -> Result<i32, Failure> {
    let since = match &args.since {
        None => None,
        Some(s) => Some(parse_since(s).map_err(Failure::usage)?),
    };
    let store = open(settings)?;
    let records = store
        .audit_list(&AuditFilter {
            account: args.account,
            since,
            limit: args.limit,
        })
        .map_err(state_err)?;
    show(
        &records,
        &[
            "at",
            "operation",
            "target",
            "outcome",
            "status",
            "detail",
            "profile",
        ],
        args.output,
    );
    Ok(exit::OK)
}

pub fn journal(
    settings: &Settings,
    account: Option<String>,
    output: OutputFormat,
) -> Result<i32, Failure> {
    let store = open(settings)?;
    let entries = store.journal_list(account.as_deref()).map_err(state_err)?;
    show(
        &entries,
        &[
            "username",
            "token_id",
            "name",
            "minted_at",
            "delivered_at",
            "verified_at",
            "revoked_at",
            "sink",
        ],
        output,
    );
    Ok(exit::OK)
}

/// `7d` (that long ago) or an RFC 3339 time, as the RFC 3339 UTC form the log stores.
fn parse_since(s: &str) -> Result<String, String> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t
            .with_timezone(&chrono::Utc)
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
    }
    let secs = crate::duration::parse_seconds(s)
        .map_err(|e| format!("--since takes a duration such as 7d or an RFC 3339 time: {e}"))?;
    Ok((chrono::Utc::now() - chrono::Duration::seconds(secs))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}
