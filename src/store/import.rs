//! Reading an inventory file for `mdops inventory import`: a JSON array (as
//! `inventory export` writes it) or CSV with a header row. Strict: unknown
//! columns or fields, a missing or invalid username, a duplicate, an empty
//! file are each an error naming the line or entry; nothing is imported then.

use super::{InventoryEntry, Source};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::path::Path;

/// One entry of a JSON import. The fields `inventory export` writes are
/// accepted (the ones mdops keeps itself are ignored); anything else is refused.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonRow {
    username: String,
    #[serde(default)]
    owner: Option<String>,
    #[serde(default)]
    purpose: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    extra: Map<String, Value>,
    #[serde(default)]
    #[allow(dead_code)]
    source: Option<Value>,
    #[serde(default)]
    #[allow(dead_code)]
    first_seen: Option<Value>,
    #[serde(default)]
    #[allow(dead_code)]
    last_seen: Option<Value>,
}

const CSV_COLUMNS: [&str; 4] = ["username", "owner", "purpose", "tags"];

pub fn read(file: &Path) -> Result<Vec<InventoryEntry>, String> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let bad = |at: String, why: String| {
        format!(
            "{}:{at}: {} (nothing was imported)",
            file.display(),
            crate::output::escape(&why)
        )
    };
    // (where, entry): where names the line or entry in messages.
    let mut entries: Vec<(String, InventoryEntry)> = if text.trim_start().starts_with('[') {
        let rows: Vec<Value> = serde_json::from_str(text)
            .map_err(|e| bad(format!("{}:{}", e.line(), e.column()), e.to_string()))?;
        rows.into_iter()
            .enumerate()
            .map(|(i, v)| {
                let at = format!("entry {}", i + 1);
                let row: JsonRow =
                    serde_json::from_value(v).map_err(|e| bad(at.clone(), e.to_string()))?;
                let mut e = InventoryEntry::new(&row.username);
                e.owner = row.owner.filter(|s| !s.is_empty());
                e.purpose = row.purpose.filter(|s| !s.is_empty());
                e.tags = row.tags;
                e.extra = row.extra;
                Ok((at, e))
            })
            .collect::<Result<_, String>>()?
    } else {
        let mut rdr = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .from_reader(text.as_bytes());
        let headers = rdr
            .headers()
            .map_err(|e| bad("1".into(), e.to_string()))?
            .clone();
        if let Some(h) = headers.iter().find(|h| !CSV_COLUMNS.contains(h)) {
            return Err(bad(
                "1".into(),
                format!(
                    "unknown column {h:?} (the columns are {}; a JSON file starts with [)",
                    CSV_COLUMNS.join(", ")
                ),
            ));
        }
        let col = |name: &str| headers.iter().position(|h| h == name);
        let user_col = col("username")
            .ok_or_else(|| bad("1".into(), "the header row has no username column".into()))?;
        let mut v = Vec::new();
        for record in rdr.records() {
            let record = record.map_err(|e| {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                bad(line.to_string(), e.to_string())
            })?;
            let line = record.position().map(|p| p.line()).unwrap_or(0).to_string();
            let get = |name: &str| {
                col(name)
                    .and_then(|i| record.get(i))
                    .map(str::to_string)
                    .filter(|s| !s.is_empty())
            };
            let mut e = InventoryEntry::new(record.get(user_col).unwrap_or(""));
            e.owner = get("owner");
            e.purpose = get("purpose");
            e.tags = get("tags")
                .unwrap_or_default()
                .split([';', ','])
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(String::from)
                .collect();
            v.push((line, e));
        }
        v
    };
    if entries.is_empty() {
        return Err(format!(
            "{}: no entries found (nothing was imported)",
            file.display()
        ));
    }
    let mut seen: HashMap<String, String> = HashMap::new();
    for (at, e) in &mut entries {
        crate::api::rules::path_username(&e.username).map_err(|v| bad(at.clone(), v.message))?;
        if let Some(first) = seen.insert(e.username.to_lowercase(), at.clone()) {
            return Err(bad(
                at.clone(),
                format!("{} is listed twice (also at {first})", e.username),
            ));
        }
        e.source = Source::Imported;
    }
    Ok(entries.into_iter().map(|(_, e)| e).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("inv");
        std::fs::write(&p, text).unwrap();
        (d, p)
    }

    #[test]
    fn malformed_files_are_refused_with_their_place() {
        for (text, want) in [
            ("garbage\n", "unknown column \"garbage\""),
            ("username,owner\n", "no entries found"),
            ("[]", "no entries found"),
            ("username,colour\na,b\n", "unknown column \"colour\""),
            (
                "username\nabc\nABC\n",
                ":3: ABC is listed twice (also at 2)",
            ),
            (
                "[{\"username\": \"a\", \"oops\": 1}]",
                ":entry 1: unknown field `oops`",
            ),
            ("username\n..\n", ":2: username"),
        ] {
            let (_d, p) = file(text);
            let e = read(&p).unwrap_err();
            assert!(e.contains(want), "{text:?}: {e}");
        }
    }

    #[test]
    fn exports_round_trip() {
        let (_d, p) = file(
            r#"[{"username":"a_one","owner":"ops","tags":["x"],"source":"added","first_seen":"t","last_seen":"t"}]"#,
        );
        let e = read(&p).unwrap();
        assert_eq!(e[0].owner.as_deref(), Some("ops"));
        assert_eq!(e[0].source, Source::Imported);
    }
}
