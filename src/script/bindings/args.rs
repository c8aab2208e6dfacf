//! The run's arguments: declared parameters (`params`), free-form `arg`, and
//! what the operator said on the command line (`--dry-run`, `--yes`).

use crate::script::bindings::host;
use crate::script::convert::RhaiResultOf;
use crate::script::convert::{invalid, script_error, to_dynamic};
use rhai::plugin::*;
use rhai::{Array, Dynamic, Map, NativeCallContext, INT};

/// A declared parameter's typed value, if the script declares parameters.
fn declared(ctx: &NativeCallContext, name: &str) -> RhaiResultOf<Option<Dynamic>> {
    let h = host(ctx)?;
    let Some(params) = h.params() else {
        return Ok(None);
    };
    match params.get(name) {
        Some(v) => Ok(Some(to_dynamic(v))),
        None => Err(invalid(
            ctx,
            name,
            format!("argument {name} is not declared in this script's params()"),
        )),
    }
}

#[export_module]
pub mod api {
    use super::*;

    /// Declares the script's parameters and returns their values, checked and typed:
    /// `let p = params(#{accounts: #{type: "accounts", required: true, doc: "..."}, ...});`.
    /// Each declaration has a `type` (string, enum, int, bool, duration, size, accounts,
    /// account, path, list, template, env), a one-line `doc`, and `required: true` or a
    /// `default_value`; `values` for enums and lists, `min`/`max` for ints and durations,
    /// `must` (exist, file, dir, writable_dir) for paths. `template` values may use
    /// `{account}` and `{name}`; `env` names an environment variable other than those
    /// that change how programs load (PATH, LD_*, ...). The `--arg`s are checked before
    /// the script runs: an unknown, missing or invalid one stops the run with exit 2.
    /// Call it once, at the top level, with a constant map; `mdops doc SCRIPT` shows it.
    #[rhai_fn(name = "params", return_raw, volatile)]
    pub fn params(ctx: NativeCallContext, declaration: Map) -> RhaiResultOf<Map> {
        let _ = declaration;
        let h = host(&ctx)?;
        match h.params() {
            Some(values) => Ok(to_dynamic(&values).try_cast::<Map>().unwrap_or_default()),
            None => Err(script_error(
                &ctx,
                "usage",
                "params() declares a script's parameters: call it once, at the top level of a script, with a constant map",
            )),
        }
    }

    /// The value of `--arg name=VALUE` as a string (typed, when the script declares its
    /// parameters). Fails if it was not given.
    #[rhai_fn(name = "arg", return_raw, volatile)]
    pub fn arg(ctx: NativeCallContext, name: &str) -> RhaiResultOf<Dynamic> {
        if let Some(v) = declared(&ctx, name)? {
            return Ok(v);
        }
        let h = host(&ctx)?;
        h.options
            .args
            .get(name)
            .cloned()
            .map(Dynamic::from)
            .ok_or_else(|| {
                invalid(
                    &ctx,
                    name,
                    format!("missing argument {name}: pass --arg {name}=VALUE"),
                )
            })
    }

    /// The value of `--arg name=VALUE`, or `default` when not given. The value is
    /// converted to the default's type: int, float, bool (true/false/yes/no/1/0),
    /// array (comma-separated strings) or string.
    #[rhai_fn(name = "arg", return_raw, volatile)]
    pub fn arg_or(ctx: NativeCallContext, name: &str, default: Dynamic) -> RhaiResultOf<Dynamic> {
        if let Some(v) = declared(&ctx, name)? {
            return Ok(if v.is_unit() { default } else { v });
        }
        let h = host(&ctx)?;
        let Some(raw) = h.options.args.get(name).cloned() else {
            return Ok(default);
        };
        let bad =
            |what: &str| invalid(&ctx, name, format!("argument {name}={raw:?} is not {what}"));
        if default.is_int() {
            return raw
                .trim()
                .parse::<INT>()
                .map(Dynamic::from)
                .map_err(|_| bad("an integer"));
        }
        if default.is_float() {
            return raw
                .trim()
                .parse::<f64>()
                .map(Dynamic::from)
                .map_err(|_| bad("a number"));
        }
        if default.is_bool() {
            return match raw.trim().to_ascii_lowercase().as_str() {
                "true" | "yes" | "1" | "on" => Ok(true.into()),
                "false" | "no" | "0" | "off" => Ok(false.into()),
                _ => Err(bad("true or false")),
            };
        }
        if default.is_array() {
            let items: Array = raw
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| Dynamic::from(s.to_string()))
                .collect();
            return Ok(items.into());
        }
        Ok(raw.into())
    }

    /// Asks the operator a yes/no question on the terminal. True with `--yes`;
    /// false when there is no terminal to ask on.
    #[rhai_fn(return_raw, volatile)]
    pub fn confirm(ctx: NativeCallContext, prompt: &str) -> RhaiResultOf<bool> {
        let h = host(&ctx)?;
        if h.options.yes {
            return Ok(true);
        }
        Ok(h.options.interactive && crate::prompt::yes_no(&crate::output::escape(prompt)))
    }

    /// Whether this is a `--dry-run` (writes are planned, not made).
    #[rhai_fn(return_raw, volatile)]
    pub fn is_dry_run(ctx: NativeCallContext) -> RhaiResultOf<bool> {
        Ok(host(&ctx)?.options.dry_run)
    }
}
