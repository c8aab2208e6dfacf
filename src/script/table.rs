//! The `Table` script type: rows with a chosen column order, made by
//! `table(rows, columns)`. Rendering is the output module's (see
//! `convert::to_doc`); this is only the Rhai side of it.

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

    /// The aligned text form (what `print(table)` shows).
    pub fn render(&self) -> String {
        match self.to_output(0) {
            Ok(t) => t.render(),
            Err(e) => format!("<{e}>"),
        }
    }
}

/// A map from key/value pairs.
pub fn map_of(pairs: &[(&str, Dynamic)]) -> Map {
    pairs
        .iter()
        .map(|(k, v)| ((*k).into(), v.clone()))
        .collect()
}
