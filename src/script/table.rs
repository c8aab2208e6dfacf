//! The script types of output: `Table`, rows with a chosen column order
//! (`table(rows, columns)`), and `Shown`, a raw value with its display text
//! (`shown(raw, text)`). Only the data: turning it into output is
//! `convert`'s job (which depends on this, not the other way round).

use rhai::{Array, Dynamic, Map};

#[derive(Debug, Clone)]
pub struct Table {
    /// `None`: every key of the rows, identifying fields first.
    pub columns: Option<Vec<String>>,
    pub rows: Array,
}

impl Table {
    pub fn new(rows: Array, columns: Option<Vec<String>>) -> Table {
        Table { columns, rows }
    }
}

/// A value with the text people see in its place: text output shows `text`,
/// JSON and CSV carry `raw` (seconds, RFC 3339 times, structured maps).
#[derive(Debug, Clone)]
pub struct Shown {
    pub raw: Dynamic,
    pub text: String,
}

/// A map from key/value pairs.
pub fn map_of(pairs: &[(&str, Dynamic)]) -> Map {
    pairs
        .iter()
        .map(|(k, v)| ((*k).into(), v.clone()))
        .collect()
}
