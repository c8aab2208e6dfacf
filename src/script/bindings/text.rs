//! Tables, patterns and templates.

use crate::script::convert::{invalid, ScriptResult};
use crate::script::table::Table;
use crate::sinks::template::{expand, Kind};
use rhai::plugin::*;
use rhai::{Array, Map, NativeCallContext};

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

    /// Expands `{account}`, `{ACCOUNT}`, `{name}` and `{NAME}` in a sink target template
    /// with `values` (`#{account, name}`), for a target of `kind`: `"file"` (each value
    /// becomes one safe file name, so a name can never climb out of its directory),
    /// `"env"` (upper-cased, other characters as `_`; the result must be a valid variable
    /// name), `"shell"` (values must be safe unquoted in `sh`, or it fails) or `"text"`.
    #[rhai_fn(return_raw)]
    pub fn expand_template(
        ctx: NativeCallContext,
        template: &str,
        values: Map,
        kind: &str,
    ) -> ScriptResult<String> {
        let kind = Kind::parse(kind).ok_or_else(|| {
            invalid(
                &ctx,
                "kind",
                format!("kind {kind:?} is not one of file, env, shell, text"),
            )
        })?;
        let get = |k: &str| values.get(k).map(|v| v.to_string()).unwrap_or_default();
        expand(template, &get("account"), &get("name"), kind)
            .map_err(|e| crate::script::convert::script_error(&ctx, "template", e))
    }
}
