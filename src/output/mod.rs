//! Rendering results for people and machines: tables with a chosen column
//! order, key/value lines, CSV and JSON. Works on JSON values, so the run
//! command, the state commands and the REPL share it; script values convert
//! into it (`script::convert`), this module knows nothing of Rhai.
//!
//! Text meant for a terminal never carries raw control characters: a name
//! with an ANSI escape or a newline in it is shown escaped (`\u{1b}`, `\n`).

mod envelope;

pub use envelope::{error_value, Envelope, OUTPUT_VERSION};
use serde_json::{Map, Value};
use std::borrow::Cow;

/// How a command prints its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    #[default]
    Text,
    Json,
    /// Tables as CSV; other results as text.
    Csv,
}

/// Rows with an explicit column order (JSON objects sort or keep insertion
/// order, rarely the order a reader wants).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Table {
    pub columns: Vec<String>,
    pub rows: Vec<Value>,
}

/// Columns that identify a row come first when none are chosen.
const FIRST: [&str; 5] = ["account", "username", "name", "id", "token_type"];

impl Table {
    /// Columns in the order given, or (none given) the union of the rows' keys
    /// with the usual identifying fields first.
    pub fn new(rows: Vec<Value>, columns: Option<Vec<String>>) -> Table {
        let columns = columns.unwrap_or_else(|| infer_columns(&rows));
        Table { columns, rows }
    }

    /// Serializable rows under these columns.
    pub fn of<T: serde::Serialize>(rows: &[T], columns: &[&str]) -> Table {
        let rows = rows
            .iter()
            .map(|r| serde_json::to_value(r).unwrap_or(Value::Null))
            .collect();
        Table::new(rows, Some(columns.iter().map(|c| c.to_string()).collect()))
    }

    /// [`Table::to_json`], taking the rows rather than copying them.
    pub fn into_json(self) -> Value {
        let columns = self.columns;
        Value::Array(
            self.rows
                .into_iter()
                .map(|row| match row {
                    Value::Object(mut m) => {
                        let mut out = Map::new();
                        for c in &columns {
                            // A column named twice keeps its one value.
                            if !out.contains_key(c) {
                                out.insert(c.clone(), m.remove(c).unwrap_or(Value::Null));
                            }
                        }
                        Value::Object(out)
                    }
                    other => other,
                })
                .collect(),
        )
    }

    /// Each row as an object holding exactly the table's columns, in order.
    pub fn to_json(&self) -> Value {
        self.clone().into_json()
    }

    fn cells(&self, row: &Value, empty: &str, csv: bool) -> Vec<String> {
        let show = |v: &Value| if csv { csv_cell(v) } else { cell(v) };
        match row {
            Value::Object(m) => self
                .columns
                .iter()
                .map(|c| match m.get(c) {
                    None | Some(Value::Null) => empty.to_string(),
                    Some(v) => show(v),
                })
                .collect(),
            other => vec![show(other)],
        }
    }

    /// Aligned columns under a header and a rule.
    pub fn render(&self) -> String {
        let mut grid: Vec<Vec<String>> = vec![self
            .columns
            .iter()
            .map(|c| escape(c).into_owned())
            .collect()];
        grid.extend(self.rows.iter().map(|r| self.cells(r, "-", false)));
        let widths: Vec<usize> = (0..self.columns.len())
            .map(|i| {
                grid.iter()
                    .map(|r| r.get(i).map(|c| c.chars().count()).unwrap_or(0))
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        for (n, row) in grid.iter().enumerate() {
            let mut line = String::new();
            for (i, c) in row.iter().enumerate() {
                if i + 1 == row.len() {
                    line.push_str(c);
                } else {
                    let pad = widths[i].saturating_sub(c.chars().count());
                    line.push_str(c);
                    line.push_str(&" ".repeat(pad + 2));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
            if n == 0 {
                let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
                out.push_str(&rule.join("  "));
                out.push('\n');
            }
        }
        out
    }

    /// RFC 4180 CSV with a header row; absent values are empty fields. A column
    /// holding objects (a Duckling configuration) becomes one column per key,
    /// `read_write.instance_size`, so every field is a plain value.
    pub fn to_csv(&self) -> String {
        let flat = self.flattened();
        let mut w = csv::Writer::from_writer(Vec::new());
        let _ = w.write_record(&flat.columns);
        for row in &flat.rows {
            let _ = w.write_record(flat.cells(row, "", true));
        }
        String::from_utf8_lossy(&w.into_inner().unwrap_or_default()).into_owned()
    }

    /// The table with each object-valued column split into `column.key` columns.
    fn flattened(&self) -> Table {
        let mut columns = Vec::new();
        for c in &self.columns {
            let mut keys: Vec<String> = Vec::new();
            for row in &self.rows {
                if let Some(Value::Object(m)) = row.get(c) {
                    for k in m.keys() {
                        if !keys.contains(k) {
                            keys.push(k.clone());
                        }
                    }
                }
            }
            if keys.is_empty() {
                columns.push((c.clone(), None));
            } else {
                columns.extend(keys.into_iter().map(|k| (format!("{c}.{k}"), Some((c, k)))));
            }
        }
        if columns.iter().all(|(_, sub)| sub.is_none()) {
            return self.clone();
        }
        let rows = self
            .rows
            .iter()
            .map(|row| match row {
                Value::Object(m) => Value::Object(
                    columns
                        .iter()
                        .map(|(name, sub)| {
                            let v = match sub {
                                None => m.get(name).cloned(),
                                Some((c, k)) => m.get(*c).and_then(|o| o.get(k)).cloned(),
                            };
                            (name.clone(), v.unwrap_or(Value::Null))
                        })
                        .collect(),
                ),
                other => other.clone(),
            })
            .collect();
        Table {
            columns: columns.into_iter().map(|(name, _)| name).collect(),
            rows,
        }
    }
}

fn infer_columns(rows: &[Value]) -> Vec<String> {
    let mut cols: Vec<String> = Vec::new();
    for row in rows {
        if let Value::Object(m) = row {
            for k in m.keys() {
                if !cols.iter().any(|c| c == k) {
                    cols.push(k.clone());
                }
            }
        }
    }
    if cols.is_empty() {
        return vec!["value".into()];
    }
    cols.sort_by_key(|c| FIRST.iter().position(|f| f == c).unwrap_or(FIRST.len()));
    cols
}

/// Control characters (C0, DEL, C1) and bidirectional overrides, escaped so
/// that text from a server or a file cannot move the cursor, recolour the
/// terminal or forge a line of output.
pub fn escape(text: &str) -> Cow<'_, str> {
    escape_where(text, is_unsafe)
}

/// As [`escape`], keeping line breaks and tabs: for text a script prints,
/// which may be laid out in lines and columns but must not carry terminal
/// control sequences (a name from the server can hold one).
pub fn escape_text(text: &str) -> Cow<'_, str> {
    escape_where(text, |c| is_unsafe(c) && !matches!(c, '\n' | '\t'))
}

fn escape_where(text: &str, is_unsafe: impl Fn(char) -> bool) -> Cow<'_, str> {
    if !text.chars().any(&is_unsafe) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_unsafe(c) {
            let escaped: String = c.escape_debug().collect();
            if escaped.chars().count() > 1 {
                out.push_str(&escaped);
            } else {
                out.push_str(&format!("\\u{{{:x}}}", c as u32));
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

fn is_unsafe(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// One value as a table cell: `-` for null, lists joined, objects as compact JSON.
pub fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => escape(s).into_owned(),
        Value::Array(a) => a.iter().map(cell).collect::<Vec<_>>().join(", "),
        Value::Object(_) => escape(&v.to_string()).into_owned(),
        other => other.to_string(),
    }
}

fn csv_cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(csv_cell).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

/// A result as a script or command produced it: a table, or any JSON value.
#[derive(Debug, Clone, PartialEq)]
pub enum Doc {
    Table(Table),
    Value(Value),
}

impl Doc {
    /// A JSON value, shown as a table when it is a non-empty array of objects.
    pub fn value(v: Value) -> Doc {
        match &v {
            Value::Array(a) if !a.is_empty() && a.iter().all(Value::is_object) => {
                Doc::Table(Table::new(a.clone(), None))
            }
            _ => Doc::Value(v),
        }
    }

    pub fn to_json(&self) -> Value {
        self.clone().into_json()
    }

    /// [`Doc::to_json`], taking the document rather than copying it.
    pub fn into_json(self) -> Value {
        match self {
            Doc::Table(t) => t.into_json(),
            Doc::Value(v) => v,
        }
    }

    /// Text for a terminal: aligned tables, `key  value` lines for objects, one
    /// line per array item, nothing for null.
    pub fn to_text(&self) -> String {
        match self {
            Doc::Table(t) => t.render(),
            Doc::Value(Value::Null) => String::new(),
            Doc::Value(Value::Object(m)) => key_values(m),
            Doc::Value(Value::Array(a)) => a.iter().map(|x| format!("{}\n", cell(x))).collect(),
            Doc::Value(v) => format!("{}\n", cell(v)),
        }
    }

    /// CSV for tables; other results as text.
    pub fn to_csv(&self) -> String {
        match self {
            Doc::Table(t) => t.to_csv(),
            other => other.to_text(),
        }
    }

    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Text => self.to_text(),
            Format::Csv => self.to_csv(),
            Format::Json => json(&self.to_json()),
        }
    }
}

fn key_values(m: &Map<String, Value>) -> String {
    let width = m.keys().map(|k| k.chars().count()).max().unwrap_or(0);
    let mut out = String::new();
    for (k, val) in m {
        let k = escape(k);
        let pad = width.saturating_sub(k.chars().count());
        out.push_str(&format!("{k}{}  {}\n", " ".repeat(pad), cell(val)));
    }
    out
}

/// Pretty JSON and a newline: one document on stdout.
pub fn json(v: &Value) -> String {
    format!(
        "{}\n",
        serde_json::to_string_pretty(v).unwrap_or_else(|_| "null".into())
    )
}

/// Writes to stdout; a closed pipe (`mdops ... | head`) is not worth a panic.
pub fn out(text: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tables_align_and_escape() {
        let t = Table::new(
            vec![
                json!({"name": "a\u{1b}[31mred", "n": 1}),
                json!({"name": "two\nlines", "n": null}),
            ],
            Some(vec!["name".into(), "n".into()]),
        );
        assert_eq!(
            t.render(),
            "name            n\n--------------  -\na\\u{1b}[31mred  1\ntwo\\nlines      -\n"
        );
        assert_eq!(t.to_csv(), "name,n\na\u{1b}[31mred,1\n\"two\nlines\",\n");
    }

    #[test]
    fn a_column_named_twice_keeps_its_value() {
        let t = Table::new(
            vec![json!({"name": "x", "b": 1})],
            Some(vec!["name".into(), "b".into(), "name".into()]),
        );
        assert_eq!(t.to_json(), json!([{"name": "x", "b": 1}]));
        assert_eq!(t.into_json(), json!([{"name": "x", "b": 1}]));
    }

    #[test]
    fn escape_leaves_plain_text_alone() {
        assert!(matches!(escape("tenant_acme"), Cow::Borrowed(_)));
        assert_eq!(escape("x\u{202e}y"), "x\\u{202e}y");
        assert_eq!(escape("tab\there"), "tab\\there");
        assert_eq!(escape("\u{85}"), "\\u{85}");
    }

    #[test]
    fn docs_render_by_shape() {
        assert_eq!(
            Doc::value(json!({"b": 2, "a": "x"})).to_text(),
            "b  2\na  x\n"
        );
        assert_eq!(Doc::value(json!([1, "two"])).to_text(), "1\ntwo\n");
        assert_eq!(Doc::value(Value::Null).to_text(), "");
        assert!(matches!(Doc::value(json!([{"a": 1}])), Doc::Table(_)));
    }
}
