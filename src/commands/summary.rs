//! The summary of a run: one line on stderr (a structured event with
//! `--log-format json`) and the `summary` of its JSON document.

use crate::runtime::ledger::Settled;
use crate::runtime::Runtime;

/// What a run did, counted: printed as its summary line on stderr, logged
/// as one event with `--log-format json`, and the `summary` of its JSON document.
pub struct Summary {
    ok: u64,
    failed: u64,
    writes: u64,
    requests: u64,
    retries: u64,
    seconds: f64,
    orphans_revoked: u64,
    /// Tokens of the run that should have been revoked and could not be:
    /// `(account, token id)`.
    unrevoked: Vec<(String, String)>,
    dry_run: bool,
    quiet_run: bool,
}

impl Summary {
    pub fn of(rt: &Runtime, started: std::time::Instant, settled: &[Settled]) -> Summary {
        use std::sync::atomic::Ordering;
        let (requests, retries) = rt.api_stats();
        let ok = rt.stats.items_ok.load(Ordering::Relaxed);
        let failed = rt.stats.items_failed.load(Ordering::Relaxed);
        Summary {
            ok,
            failed,
            writes: rt.stats.writes.load(Ordering::Relaxed),
            requests,
            retries,
            seconds: started.elapsed().as_secs_f64(),
            orphans_revoked: settled
                .iter()
                .filter(|s| s.revoked && s.token_id.is_some())
                .count() as u64,
            unrevoked: settled
                .iter()
                .filter(|s| !s.revoked)
                .filter_map(|s| Some((s.username.clone(), s.token_id.clone()?)))
                .collect(),
            dry_run: rt.options.dry_run,
            quiet_run: ok + failed == 0 && settled.is_empty(),
        }
    }

    /// `stopped`: why the run stopped early (`--max-writes`, a signal), if it did.
    pub fn to_json(&self, stopped: Option<String>) -> serde_json::Value {
        serde_json::json!({
            "items_ok": self.ok,
            "items_failed": self.failed,
            "writes": self.writes,
            "requests": self.requests,
            "retries": self.retries,
            "seconds": (self.seconds * 1000.0).round() / 1000.0,
            "orphans_revoked": self.orphans_revoked,
            "unrevoked": self.unrevoked.iter().map(|(account, id)| {
                serde_json::json!({"account": account, "token_id": id})
            }).collect::<Vec<_>>(),
            "stopped": stopped,
        })
    }

    /// The error message of a run that ended with a code but no error of its own.
    pub fn failure_text(&self) -> String {
        if !self.unrevoked.is_empty() {
            let which: Vec<String> = self
                .unrevoked
                .iter()
                .map(|(account, id)| format!("{id} of {account}"))
                .collect();
            format!(
                "{} token(s) minted in this run could not be revoked: revoke {} by hand",
                which.len(),
                crate::output::escape(&which.join(", "))
            )
        } else if self.failed > 0 {
            format!("{} of {} items failed", self.failed, self.ok + self.failed)
        } else if self.orphans_revoked > 0 {
            format!(
                "{} token(s) minted in this run were never delivered, revealed or released, and were revoked",
                self.orphans_revoked
            )
        } else {
            "the script asked for this exit code".into()
        }
    }

    /// The summary line on stderr (a structured event with `--log-format
    /// json`), for bulk runs and runs that stopped early.
    pub fn print(&self, name: &str, stopped: Option<String>) {
        if self.quiet_run && stopped.is_none() {
            return;
        }
        let (ok, failed, writes, requests, retries, secs) = (
            self.ok,
            self.failed,
            self.writes,
            self.requests,
            self.retries,
            self.seconds,
        );
        let why = stopped.map(|w| format!("; {w}")).unwrap_or_default();
        if tracing::enabled!(tracing::Level::INFO) {
            tracing::info!(
                script = name,
                items_ok = ok,
                items_failed = failed,
                writes,
                requests,
                retries,
                orphans_revoked = self.orphans_revoked,
                seconds = secs,
                stopped = why.trim_start_matches("; "),
                "run finished"
            );
            return;
        }
        let mut orphans = if self.orphans_revoked > 0 {
            format!("; {} undelivered token(s) revoked", self.orphans_revoked)
        } else {
            String::new()
        };
        if !self.unrevoked.is_empty() {
            orphans.push_str(&format!(
                "; {} token(s) could not be revoked",
                self.unrevoked.len()
            ));
        }
        let writes = if self.dry_run {
            format!("{writes} {} planned", plural(writes, "write"))
        } else {
            format!("{writes} {}", plural(writes, "write"))
        };
        // One write: a log collector never sees the line cut or interleaved.
        let line = format!(
            "{name}: {ok} {} ok, {failed} failed; {writes}, {requests} {}, {retries} {}; {secs:.1}s{orphans}{why}\n",
            plural(ok, "item"),
            plural(requests, "request"),
            plural(retries, "retry")
        );
        let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
    }
}

/// `item`/`items`, `retry`/`retries`.
fn plural(n: impl Into<u64>, one: &str) -> String {
    match (n.into(), one.strip_suffix('y')) {
        (1, _) => one.to_string(),
        (_, Some(stem)) => format!("{stem}ies"),
        _ => format!("{one}s"),
    }
}
