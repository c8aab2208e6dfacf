//! Tables, patterns and templates.

use crate::script::convert::{invalid, RhaiResultOf, MAX_DEPTH};
use crate::script::table::{Shown, Table};
use crate::sinks::template::{expand, Kind};
use rhai::plugin::*;
use rhai::{Array, Dynamic, Map, NativeCallContext};

/// Rhai's own formatting of arrays and maps (`[1, "a"]`, `#{"k": 1}`),
/// without its unbounded recursion: past `MAX_DEPTH` levels a container
/// shows as `…` and the result says it was cut (`Err` with the text).
fn debug_of(
    ctx: &NativeCallContext,
    v: &Dynamic,
    depth: usize,
    out: &mut String,
) -> Result<(), ()> {
    if depth > MAX_DEPTH && (v.is_array() || v.is_map()) {
        out.push('…');
        return Err(());
    }
    let mut whole = Ok(());
    if let Some(a) = v.read_lock::<Array>() {
        out.push('[');
        for (i, x) in a.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            whole = whole.and(debug_of(ctx, x, depth + 1, out));
        }
        out.push(']');
        return whole;
    }
    if let Some(m) = v.read_lock::<Map>() {
        out.push_str("#{");
        for (i, (k, x)) in m.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            out.push_str(&format!("{:?}: ", k.as_str()));
            whole = whole.and(debug_of(ctx, x, depth + 1, out));
        }
        out.push('}');
        return whole;
    }
    let shown = ctx
        .call_native_fn::<rhai::ImmutableString>("to_debug", (v.clone(),))
        .map(|s| s.to_string())
        .unwrap_or_else(|_| format!("{v:?}"));
    out.push_str(&shown);
    Ok(())
}

/// The text of a container, cut past `MAX_DEPTH` levels (never an error, so
/// string interpolation, which falls back to unbounded formatting on error,
/// stays bounded).
fn format(ctx: &NativeCallContext, v: Dynamic) -> String {
    let mut out = String::new();
    let _ = debug_of(ctx, &v, 0, &mut out);
    out
}

/// For `print` and `debug`: the whole text, or a clear error.
fn printable(ctx: &NativeCallContext, v: Dynamic) -> RhaiResultOf<String> {
    let mut out = String::new();
    debug_of(ctx, &v, 0, &mut out).map_err(|_| {
        crate::script::convert::script_error(
            ctx,
            "value",
            format!("cannot print a value nested more than {MAX_DEPTH} levels deep"),
        )
    })?;
    Ok(out)
}

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

    /// A value with the text people see in its place: text output shows `text`,
    /// while `--output json` and `csv` carry `raw`. For report cells such as an age
    /// (`shown(age, "85d")`: seconds in JSON) or a configuration
    /// (`shown(cfg, "jumbo, cooldown 5m")`: the map in JSON). `.raw` and `.text`
    /// read them back; printing or interpolating shows the text.
    pub fn shown(raw: Dynamic, text: &str) -> Shown {
        Shown {
            raw,
            text: text.to_string(),
        }
    }

    /// The raw value of a `shown(raw, text)` cell (what JSON output carries).
    #[rhai_fn(get = "raw", pure)]
    pub fn shown_raw(s: &mut Shown) -> Dynamic {
        s.raw.clone()
    }

    /// The display text of a `shown(raw, text)` cell (what text output shows).
    #[rhai_fn(get = "text", pure)]
    pub fn shown_text(s: &mut Shown) -> String {
        s.text.clone()
    }

    /// Whether `text` matches the glob `pattern`: `*` any run of characters, `?` one
    /// character, `[0-2]` one of a class or range, `[!x]` any but; case-insensitive
    /// (usernames are).
    pub fn glob_match(pattern: &str, text: &str) -> bool {
        crate::glob::matches(pattern, text)
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
    ) -> RhaiResultOf<String> {
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

    /// An array as text: `[1, "a", #{"k": 2}]` (cut with `…` past 128 levels).
    #[rhai_fn(global, name = "to_string")]
    pub fn array_to_string(ctx: NativeCallContext, array: &mut Array) -> String {
        format(&ctx, Dynamic::from_array(array.clone()))
    }

    /// Same as `to_string` for arrays.
    #[rhai_fn(global, name = "to_debug")]
    pub fn array_to_debug(ctx: NativeCallContext, array: &mut Array) -> String {
        format(&ctx, Dynamic::from_array(array.clone()))
    }

    /// A map as text: `#{"a": 1, "b": "x"}` (cut with `…` past 128 levels).
    #[rhai_fn(global, name = "to_string")]
    pub fn map_to_string(ctx: NativeCallContext, map: &mut Map) -> String {
        format(&ctx, Dynamic::from_map(map.clone()))
    }

    /// Same as `to_string` for maps.
    #[rhai_fn(global, name = "to_debug")]
    pub fn map_to_debug(ctx: NativeCallContext, map: &mut Map) -> String {
        format(&ctx, Dynamic::from_map(map.clone()))
    }

    /// Prints an array (an error past 128 levels of nesting, rather than the stack).
    #[rhai_fn(global, name = "print", return_raw)]
    pub fn print_array(ctx: NativeCallContext, array: &mut Array) -> RhaiResultOf<String> {
        printable(&ctx, Dynamic::from_array(array.clone()))
    }

    /// Prints a map (an error past 128 levels of nesting, rather than the stack).
    #[rhai_fn(global, name = "print", return_raw)]
    pub fn print_map(ctx: NativeCallContext, map: &mut Map) -> RhaiResultOf<String> {
        printable(&ctx, Dynamic::from_map(map.clone()))
    }

    /// Debug-prints an array (an error past 128 levels of nesting).
    #[rhai_fn(global, name = "debug", return_raw)]
    pub fn debug_array(ctx: NativeCallContext, array: &mut Array) -> RhaiResultOf<String> {
        printable(&ctx, Dynamic::from_array(array.clone()))
    }

    /// Debug-prints a map (an error past 128 levels of nesting).
    #[rhai_fn(global, name = "debug", return_raw)]
    pub fn debug_map(ctx: NativeCallContext, map: &mut Map) -> RhaiResultOf<String> {
        printable(&ctx, Dynamic::from_map(map.clone()))
    }
}
