//! `mdops inventory`, `mdops audit`, `mdops journal`: the local state from
//! the command line.

use crate::cli::{AuditArgs, ExportFormat, InventoryCmd, JournalCmd};
use crate::context::{Context, OnSignal};
use crate::failure::{exit, Failure};
use crate::output::{out, Doc, Envelope, Format, Table};
use crate::settings::Settings;
use crate::store::{AuditFilter, InventoryEntry, Store};
use serde::Serialize;

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
    match &settings.state_url {
        // A database that cannot be reached is a configuration problem: exit 2.
        Some(url) => Store::connect(url).map_err(|e| Failure::usage(e.0)),
        None => {
            Store::open(&settings.data_dir, settings.profile.as_deref()).map_err(Failure::state)
        }
    }
}

/// `mdops state migrate --to URL|local`: copies this state into another.
pub fn migrate(settings: &Settings, to: &str, output: Format) -> Result<i32, Failure> {
    let from = open(settings)?;
    let dest = if to.trim() == "local" {
        Store::open(&settings.data_dir, settings.profile.as_deref()).map_err(Failure::state)?
    } else {
        if url::Url::parse(to.trim())
            .map(|u| u.password().is_some() || u.query_pairs().any(|(k, _)| k == "password"))
            .unwrap_or(false)
        {
            return Err(Failure::usage(
                "--to must not carry a password: the process list would show it; use PGPASSWORD or ~/.pgpass",
            ));
        }
        let mut url = crate::store::StateUrl::parse(to, &|k| std::env::var(k).ok())
            .map_err(|e| Failure::usage(format!("--to: {}", e.0)))?;
        url.scope = settings.profile.clone().unwrap_or_else(|| "default".into());
        Store::connect(&url).map_err(|e| Failure::usage(e.0))?
    };
    if from.place == dest.place {
        return Err(Failure::usage(format!(
            "--to names the state this command reads ({}): nothing to copy",
            from.place
        )));
    }
    let copied = from.copy_into(&dest).map_err(|e| Failure::state(e.0))?;
    if output == Format::Json {
        out(&Envelope::ok(serde_json::json!({
            "from": from.place,
            "to": dest.place,
            "added": copied,
        }))
        .render());
    } else {
        let rows: Vec<serde_json::Value> = [
            ("inventory", copied.inventory),
            ("token_journal", copied.token_journal),
            ("runs", copied.runs),
            ("token_attempts", copied.token_attempts),
            ("deliveries", copied.deliveries),
            ("audit", copied.audit),
        ]
        .iter()
        .map(|(t, n)| serde_json::json!({"table": t, "added": n}))
        .collect();
        show(&rows, &["table", "added"], output);
        if !settings.quiet {
            let added = copied.inventory
                + copied.token_journal
                + copied.runs
                + copied.token_attempts
                + copied.deliveries
                + copied.audit;
            eprintln!(
                "copied {} into {}: {} row(s) read, {added} added",
                from.place, dest.place, copied.read
            );
        }
    }
    Ok(exit::OK)
}

/// Rows as a table or CSV of these columns, or as one JSON document with
/// every field; `(none)` for an empty table in text.
fn show<T: Serialize>(rows: &[T], columns: &[&str], format: Format) {
    match format {
        Format::Json => out(&Envelope::ok(serde_json::to_value(rows).unwrap_or_default()).render()),
        Format::Text if rows.is_empty() => out("(none)\n"),
        _ => out(&Doc::Table(Table::of(rows, columns)).render(format)),
    }
}

pub fn inventory(settings: &Settings, action: InventoryCmd) -> Result<i32, Failure> {
    if let InventoryCmd::Reconcile { adopt, output } = action {
        return reconcile(settings, adopt, output);
    }
    let store = open(settings)?;
    match action {
        InventoryCmd::List { output } => {
            let entries = store.inventory_list()?;
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
            let stored = store.inventory_upsert(&e)?;
            out(&format!(
                "added {}\n",
                crate::output::escape(&stored.username)
            ));
        }
        InventoryCmd::Remove { username } => {
            if !store.inventory_remove(&username)? {
                return Err(Failure::usage(format!(
                    "{} is not in the inventory",
                    crate::output::escape(&username)
                )));
            }
            out(&format!("removed {}\n", crate::output::escape(&username)));
        }
        InventoryCmd::Import { file } => {
            let entries = crate::store::import::read(&file).map_err(Failure::usage)?;
            // All or nothing: one transaction.
            store.inventory_upsert_all(&entries)?;
            out(&format!(
                "imported {} entries from {}\n",
                entries.len(),
                file.display()
            ));
        }
        InventoryCmd::Export { format } => {
            let entries = store.inventory_list()?;
            match format {
                ExportFormat::Json => out(&crate::output::json(
                    &serde_json::to_value(&entries).unwrap_or_default(),
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
        InventoryCmd::Reconcile { .. } => unreachable!("handled above"),
    }
    Ok(exit::OK)
}

#[derive(Serialize)]
struct Reconciled {
    /// On the server (user list or running Ducklings) but not in the inventory.
    missing_from_inventory: Vec<String>,
    /// In the inventory, but the server no longer has the account.
    gone_from_server: Vec<String>,
    adopted: Vec<String>,
}

/// The same reconciliation as the `reconcile-inventory` workflow, shown as
/// two lists (or one JSON document).
fn reconcile(settings: &Settings, adopt: bool, output: Format) -> Result<i32, Failure> {
    let ctx = Context::new(settings.clone(), OnSignal::Run)?;
    let rt = ctx.runtime(ctx.options(), "inventory reconcile");
    let found = rt
        .reconcile(adopt, false, &|_| true)
        .map_err(runtime_failure)?;
    let names = |states: &[&str]| -> Vec<String> {
        found
            .rows
            .iter()
            .filter(|r| states.contains(&r.state))
            .map(|r| r.account.clone())
            .collect()
    };
    let report = Reconciled {
        missing_from_inventory: names(&["untracked", "adopted"]),
        gone_from_server: names(&["gone"]),
        adopted: names(&["adopted"]),
    };
    match output {
        Format::Json => {
            out(&Envelope::ok(serde_json::to_value(&report).unwrap_or_default()).render())
        }
        Format::Csv => out(&Table::of(&found.rows, &["account", "state"]).to_csv()),
        Format::Text => {
            let list = |v: &[String]| {
                if v.is_empty() {
                    "(none)".to_string()
                } else {
                    crate::output::escape(&v.join(", ")).into_owned()
                }
            };
            let mut text = format!(
                "on the server, not in the inventory: {}\nin the inventory, gone from the server: {}\n",
                list(if adopt { &[] } else { &report.missing_from_inventory }),
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

fn runtime_failure(e: crate::runtime::Error) -> Failure {
    match e {
        crate::runtime::Error::Api(a) => Failure::api(&a),
        other => Failure::script(other.to_string()),
    }
}

pub fn audit(settings: &Settings, args: AuditArgs) -> Result<i32, Failure> {
    let since = match &args.since {
        None => None,
        Some(s) => Some(parse_since(s).map_err(Failure::usage)?),
    };
    let store = open(settings)?;
    let records = store.audit_list(&AuditFilter {
        account: args.account,
        since,
        limit: args.limit,
    })?;
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
    action: Option<JournalCmd>,
    account: Option<String>,
    output: Format,
) -> Result<i32, Failure> {
    if let Some(JournalCmd::Resolve { dry_run, same_org }) = action {
        return resolve(settings, dry_run, same_org, output);
    }
    let store = open(settings)?;
    let entries = store.journal_list(account.as_deref())?;
    show(
        &entries,
        &[
            "username",
            "token_id",
            "name",
            "minted_at",
            "delivered_at",
            "verified_at",
            "revealed_at",
            "revoked_at",
            "sink",
        ],
        output,
    );
    Ok(exit::OK)
}

const RESOLVED_COLUMNS: [&str; 5] = ["script", "pid", "account", "token", "outcome"];

#[derive(Serialize)]
struct Resolved {
    run: String,
    script: String,
    pid: i64,
    account: String,
    token: String,
    outcome: String,
}

impl Resolved {
    /// A dead run whose tokens only a run on its own organization settles.
    fn elsewhere(run: &crate::store::RunRecord, why: &str) -> Resolved {
        Resolved {
            run: run.run_id.clone(),
            script: run.script.clone(),
            pid: run.pid,
            account: "-".into(),
            token: "-".into(),
            outcome: crate::runtime::cleanup::left_elsewhere(run, why),
        }
    }
}

/// `mdops journal resolve`: what runs that died left behind, revoked now.
fn resolve(
    settings: &Settings,
    dry_run: bool,
    same_org: bool,
    output: Format,
) -> Result<i32, Failure> {
    let store = open(settings)?;
    if dry_run {
        let mut rows = Vec::new();
        // Without an admin token at hand, runs are told apart by API only.
        let here = crate::store::Org {
            api: Some(crate::api::base_url::identity(&settings.api_url)),
            admin: settings.require_token().ok().map(|t| store.fingerprint(&t)),
        };
        for run in store.runs_open()? {
            if let Some(why) = run.elsewhere(&here).filter(|_| !same_org) {
                if !store.run_left(&run.run_id)?.is_empty() {
                    rows.push(Resolved::elsewhere(&run, &why));
                }
                continue;
            }
            for j in store.journal_unsettled(&run.run_id)? {
                rows.push(Resolved {
                    run: run.run_id.clone(),
                    script: run.script.clone(),
                    pid: run.pid,
                    account: j.username,
                    token: format!("{} ({})", j.name.unwrap_or_default(), j.token_id),
                    outcome: "would be revoked if the run is dead".into(),
                });
            }
            for a in store.attempts_open(&run.run_id)? {
                rows.push(Resolved {
                    run: run.run_id.clone(),
                    script: run.script.clone(),
                    pid: run.pid,
                    account: a.username,
                    token: a.name,
                    outcome: "answer never came: a token of this name minted then would be revoked"
                        .into(),
                });
            }
        }
        if output == Format::Json {
            let mut doc = Envelope::ok(serde_json::to_value(&rows).unwrap_or_default());
            doc.dry_run = true;
            out(&doc.render());
        } else {
            show(&rows, &RESOLVED_COLUMNS, output);
        }
        return Ok(exit::OK);
    }
    drop(store);
    let ctx = Context::new(settings.clone(), OnSignal::Run)?;
    let rt = ctx.runtime(ctx.options(), "journal resolve");
    let done =
        crate::runtime::cleanup::resolve_dead_runs(&rt, same_org).map_err(runtime_failure)?;
    let mut rows = Vec::new();
    let mut clean = true;
    for (run, why) in &done.elsewhere {
        clean = false;
        rows.push(Resolved::elsewhere(run, why));
    }
    for (run, settled) in done.settled {
        for s in settled {
            clean &= s.revoked || s.token_id.is_none();
            rows.push(Resolved {
                run: run.run_id.clone(),
                script: run.script.clone(),
                pid: run.pid,
                account: s.username.clone(),
                token: format!(
                    "{} ({})",
                    s.name.clone().unwrap_or_default(),
                    s.token_id.clone().unwrap_or_else(|| "-".into())
                ),
                outcome: s.outcome.clone(),
            });
        }
    }
    let code = if clean { exit::OK } else { exit::PARTIAL };
    if output == Format::Json {
        let mut doc = Envelope::ok(serde_json::to_value(&rows).unwrap_or_default());
        if !clean {
            doc.ok = false;
            doc.error = crate::output::error_value(
                "some tokens could not be revoked; run `mdops journal resolve` again",
                code,
                crate::failure::kind_name(code),
                None,
            );
        }
        out(&doc.render());
    } else {
        show(&rows, &RESOLVED_COLUMNS, output);
    }
    Ok(code)
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
    if secs < 0 {
        return Err("--since takes a positive duration".into());
    }
    Ok((chrono::Utc::now() - chrono::Duration::seconds(secs))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}
