//! Tables: arrays of maps shown as aligned text, with a chosen column order.

use crate::script::convert::to_json;
use rhai::{Array, Dynamic, Map};
use serde_json::Value;

/// Rows with an explicit column order (Rhai maps sort their keys, which is
/// rarely the order a reader wants). Made by `table(rows, columns)`.
#[derive(Debug, Clone)]
pub struct Table {
    pub columns: Vec<String>,
    pub rows: Array,
}

impl Table {
    /// Columns in the order given, or (none given) the union of the rows' keys
    /// with the usual identifying fields first.
    pub fn new(rows: Array, columns: Option<Vec<String>>) -> Table {
        let columns = columns.unwrap_or_else(|| infer_columns(&rows));
        Table { columns, rows }
    }

    pub fn to_json(&self) -> Value {
        Value::Array(
            self.rows
                .iter()
                .map(|row| match row.read_lock::<Map>() {
                    Some(m) => Value::Object(
                        self.columns
                            .iter()
                            .map(|c| {
                                (
                                    c.clone(),
                                    m.get(c.as_str()).map(to_json).unwrap_or(Value::Null),
                                )
                            })
                            .collect(),
                    ),
                    None => to_json(row),
                })
                .collect(),
        )
    }

    pub fn render(&self) -> String {
        let mut grid: Vec<Vec<String>> = vec![self.columns.clone()];
        for row in &self.rows {
            let line = match row.read_lock::<Map>() {
                Some(m) => self
                    .columns
                    .iter()
                    .map(|c| m.get(c.as_str()).map(cell).unwrap_or_else(|| "-".into()))
                    .collect(),
                None => vec![cell(row)],
            };
            grid.push(line);
        }
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
                    line.push_str(&format!("{c:<w$}  ", w = widths[i]));
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
}

const FIRST: [&str; 4] = ["username", "name", "id", "token_type"];

fn infer_columns(rows: &Array) -> Vec<String> {
    let mut cols: Vec<String> = Vec::new();
    for row in rows {
        if let Some(m) = row.read_lock::<Map>() {
            for k in m.keys() {
                if !cols.iter().any(|c| c == k.as_str()) {
                    cols.push(k.to_string());
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

/// One value as a table cell: `-` for unit, lists joined, maps compact.
pub fn cell(v: &Dynamic) -> String {
    if v.is_unit() {
        return "-".into();
    }
    if v.is_string() {
        return v.clone().into_string().unwrap_or_default();
    }
    if let Some(a) = v.read_lock::<Array>() {
        return a.iter().map(cell).collect::<Vec<_>>().join(", ");
    }
    if let Some(s) = v.read_lock::<crate::api::SecretString>() {
        return s.redacted();
    }
    if v.is_map() {
        return to_json(v).to_string();
    }
    v.to_string()
}

/// Whether a value is an array whose elements are all maps (shown as a table).
pub fn is_rows(v: &Dynamic) -> bool {
    v.read_lock::<Array>()
        .is_some_and(|a| !a.is_empty() && a.iter().all(|r| r.is_map()))
}

/// The text form of a run's result.
pub fn render_text(v: &Dynamic) -> String {
    if v.is_unit() {
        return String::new();
    }
    if let Some(t) = v.read_lock::<Table>() {
        return t.render();
    }
    if is_rows(v) {
        let rows = v.read_lock::<Array>().expect("array").clone();
        return Table::new(rows, None).render();
    }
    if let Some(m) = v.read_lock::<Map>() {
        let width = m.keys().map(|k| k.chars().count()).max().unwrap_or(0);
        let mut out = String::new();
        for (k, val) in m.iter() {
            out.push_str(&format!("{k:<width$}  {}\n", cell(val)));
        }
        return out;
    }
    if let Some(a) = v.read_lock::<Array>() {
        return a.iter().map(|x| format!("{}\n", cell(x))).collect();
    }
    format!("{}\n", cell(v))
}

/// The CSV form of a run's result: tables and arrays of maps as CSV with a
/// header row; anything else as text.
pub fn render_csv(v: &Dynamic) -> String {
    let table = if let Some(t) = v.read_lock::<Table>() {
        t.clone()
    } else if is_rows(v) {
        Table::new(v.read_lock::<Array>().expect("array").clone(), None)
    } else {
        return render_text(v);
    };
    table.to_csv()
}

impl Table {
    pub fn to_csv(&self) -> String {
        let mut w = csv::Writer::from_writer(Vec::new());
        let _ = w.write_record(&self.columns);
        for row in &self.rows {
            let record: Vec<String> = match row.read_lock::<Map>() {
                Some(m) => self
                    .columns
                    .iter()
                    .map(|c| match m.get(c.as_str()) {
                        None => String::new(),
                        Some(v) if v.is_unit() => String::new(),
                        Some(v) => cell(v),
                    })
                    .collect(),
                None => vec![cell(row)],
            };
            let _ = w.write_record(&record);
        }
        String::from_utf8_lossy(&w.into_inner().unwrap_or_default()).into_owned()
    }
}

pub fn map_of(pairs: &[(&str, Dynamic)]) -> Map {
    pairs
        .iter()
        .map(|(k, v)| ((*k).into(), v.clone()))
        .collect()
}
