//! The `Table` script type: rows with a chosen column order, made by
//! `table(rows, columns)`. Only the data: turning it into output is
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

/// A map from key/value pairs.
pub fn map_of(pairs: &[(&str, Dynamic)]) -> Map {
    pairs
        .iter()
        .map(|(k, v)| ((*k).into(), v.clone()))
        .collect()
}
