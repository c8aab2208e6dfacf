//! Tables and patterns.

use crate::script::table::Table;
use rhai::plugin::*;
use rhai::Array;

#[export_module]
pub mod api {
    use super::*;

    /// A table of `rows` (maps) showing `columns` in this order; printed aligned
    /// in text output, as CSV with `--output csv` and as an array of objects with
    /// `--output json`.
    #[rhai_fn(name = "table")]
    pub fn table_with(rows: Array, columns: Array) -> Table {
        Table::new(rows, Some(columns.iter().map(|c| c.to_string()).collect()))
    }

    /// A table of `rows` (maps) with every key as a column.
    #[rhai_fn(name = "table")]
    pub fn table(rows: Array) -> Table {
        Table::new(rows, None)
    }

    /// Whether `text` matches the glob `pattern`: `*` any run of characters, `?` one
    /// character, `[0-2]` one of a class or range, `[!x]` any but; case-insensitive
    /// (usernames are).
    pub fn glob_match(pattern: &str, text: &str) -> bool {
        crate::script::glob::matches(pattern, text)
    }
}
