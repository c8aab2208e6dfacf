//! Script helpers: arguments, time, confirmation, tables, `parallel`.

use crate::script::bindings::host;
use crate::script::convert::{invalid, RhaiResult};
use crate::script::prompt;
use crate::script::table::Table;
use rhai::plugin::*;
use rhai::{Array, Dynamic, EvalAltResult, FnPtr, Map, NativeCallContext, INT};

/// The key under which `exit(code)` leaves its code in the termination value.
pub const EXIT_CODE_KEY: &str = "mdops_exit_code";

#[export_module]
pub mod api {
    use super::*;

    /// The value of `--arg name=VALUE` as a string. Fails if it was not given.
    #[rhai_fn(name = "arg", return_raw, volatile)]
    pub fn arg(ctx: NativeCallContext, name: &str) -> RhaiResult<String> {
        let h = host(&ctx)?;
        h.options.args.get(name).cloned().ok_or_else(|| {
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
    pub fn arg_or(ctx: NativeCallContext, name: &str, default: Dynamic) -> RhaiResult<Dynamic> {
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

    /// Seconds in a duration such as `"90d"`, `"12h"`, `"1h30m"`, `"2w"` or `"300"`.
    #[rhai_fn(name = "duration", return_raw)]
    pub fn duration(ctx: NativeCallContext, text: &str) -> RhaiResult<INT> {
        crate::duration::parse_seconds(text).map_err(|e| invalid(&ctx, "duration", e))
    }

    /// Renders seconds as a compact duration: `format_duration(90061)` is `"1d1h1m1s"`.
    #[rhai_fn(name = "format_duration")]
    pub fn format_duration(seconds: INT) -> String {
        crate::duration::format_seconds(seconds)
    }

    /// The current time as Unix seconds (UTC). Token maps give `age` and
    /// `expires_in` directly; use `iso_time(now())` for a readable form.
    #[rhai_fn(volatile)]
    pub fn now() -> INT {
        chrono::Utc::now().timestamp()
    }

    /// Unix seconds as an RFC 3339 UTC timestamp, like the API's `created_ts`.
    pub fn iso_time(seconds: INT) -> String {
        chrono::DateTime::from_timestamp(seconds, 0)
            .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_default()
    }

    /// An RFC 3339 timestamp (such as a token's `expire_at`) as Unix seconds.
    #[rhai_fn(return_raw)]
    pub fn parse_time(ctx: NativeCallContext, text: &str) -> RhaiResult<INT> {
        chrono::DateTime::parse_from_rfc3339(text)
            .map(|d| d.timestamp())
            .map_err(|_| {
                invalid(
                    &ctx,
                    "time",
                    format!("{text:?} is not an RFC 3339 timestamp"),
                )
            })
    }

    /// Asks the operator a yes/no question on the terminal. True with `--yes`;
    /// false when there is no terminal to ask on.
    #[rhai_fn(return_raw, volatile)]
    pub fn confirm(ctx: NativeCallContext, prompt: &str) -> RhaiResult<bool> {
        let h = host(&ctx)?;
        if h.options.yes {
            return Ok(true);
        }
        Ok(h.options.interactive && prompt::yes_no(prompt))
    }

    /// Stops the script at once with this process exit code (0–255). By convention
    /// 4 tells cron that a bulk run finished but some items failed. `try`/`catch`
    /// does not intercept it.
    #[rhai_fn(name = "exit", return_raw, volatile)]
    pub fn exit_with(ctx: NativeCallContext, code: INT) -> RhaiResult<()> {
        if !(0..=255).contains(&code) {
            return Err(invalid(
                &ctx,
                "code",
                format!("exit code {code} is not between 0 and 255"),
            ));
        }
        let mut m = Map::new();
        m.insert(EXIT_CODE_KEY.into(), Dynamic::from(code));
        Err(Box::new(EvalAltResult::ErrorTerminated(
            m.into(),
            ctx.call_position(),
        )))
    }

    /// Runs a shell command (`sh -c`) and returns `#{ok, status, stdout, stderr}`.
    /// For deploy steps and the like; to hand a command a secret use
    /// `secrets::to_command` or `secrets::check_command`. A dry run only plans it.
    #[rhai_fn(return_raw, volatile)]
    pub fn sh(ctx: NativeCallContext, command: &str) -> RhaiResult<Map> {
        let h = host(&ctx)?;
        if h.options.dry_run {
            h.plan("run", command, None);
            return Ok(crate::script::table::map_of(&[
                ("ok", true.into()),
                ("status", Dynamic::from(0 as INT)),
                ("stdout", "".into()),
                ("stderr", "".into()),
            ]));
        }
        crate::sinks::run_command(command, None)
            .map(|r| r.into_map())
            .map_err(|e| crate::script::convert::script_error(&ctx, "command", e))
    }

    /// Whether `text` matches the glob `pattern`: `*` any run of characters,
    /// `?` one character; case-insensitive (usernames are).
    pub fn glob_match(pattern: &str, text: &str) -> bool {
        crate::script::glob::matches(pattern, text)
    }

    /// Sets the exit code the run ends with, without stopping it: the script
    /// finishes and its result is shown. `set_exit_code(4)` reports a partial failure.
    #[rhai_fn(return_raw, volatile)]
    pub fn set_exit_code(ctx: NativeCallContext, code: INT) -> RhaiResult<()> {
        if !(0..=255).contains(&code) {
            return Err(invalid(
                &ctx,
                "code",
                format!("exit code {code} is not between 0 and 255"),
            ));
        }
        host(&ctx)?
            .exit_code
            .store(code as i32, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// Whether this is a `--dry-run` (writes are planned, not made).
    #[rhai_fn(return_raw, volatile)]
    pub fn is_dry_run(ctx: NativeCallContext) -> RhaiResult<bool> {
        Ok(host(&ctx)?.options.dry_run)
    }

    /// A table of `rows` (maps) showing `columns` in this order; printed aligned
    /// in text output and as an array of objects with `--output json`.
    #[rhai_fn(name = "table")]
    pub fn table_with(rows: Array, columns: Array) -> Table {
        Table::new(rows, Some(columns.iter().map(|c| c.to_string()).collect()))
    }

    /// A table of `rows` (maps) with every key as a column.
    #[rhai_fn(name = "table")]
    pub fn table(rows: Array) -> Table {
        Table::new(rows, None)
    }

    /// Calls `f(item)` for each item, several at a time (`--concurrency`, default 8),
    /// and returns the results in input order. An item whose call throws yields
    /// `#{error, item}` in its place; the others go on. `f` should be a closure or
    /// a function of the script; each worker runs it on its own engine, so it
    /// sees the script's functions and imports but not its global variables
    /// (pass what it needs, or capture it in the closure).
    #[rhai_fn(name = "parallel", return_raw, volatile)]
    pub fn parallel(ctx: NativeCallContext, items: Array, f: FnPtr) -> RhaiResult<Array> {
        let h = host(&ctx)?;
        let n = h.options.concurrency.max(1);
        run_all(&ctx, items, &f, n)
    }

    /// `parallel(items, f)` over a range of integers (`0..n`).
    #[rhai_fn(name = "parallel", return_raw, volatile)]
    pub fn parallel_range(
        ctx: NativeCallContext,
        items: std::ops::Range<INT>,
        f: FnPtr,
    ) -> RhaiResult<Array> {
        parallel(ctx, items.map(Dynamic::from).collect(), f)
    }

    /// `parallel(items, f)` over an inclusive range of integers (`0..=n`).
    #[rhai_fn(name = "parallel", return_raw, volatile)]
    pub fn parallel_range_inclusive(
        ctx: NativeCallContext,
        items: std::ops::RangeInclusive<INT>,
        f: FnPtr,
    ) -> RhaiResult<Array> {
        parallel(ctx, items.map(Dynamic::from).collect(), f)
    }

    /// `parallel(items, f)` with options `#{concurrency}`: at most that many at a
    /// time (capped by `--concurrency`).
    #[rhai_fn(name = "parallel", return_raw, volatile)]
    pub fn parallel_with(
        ctx: NativeCallContext,
        items: Array,
        f: FnPtr,
        options: Map,
    ) -> RhaiResult<Array> {
        let h = host(&ctx)?;
        let max = h.options.concurrency.max(1);
        let mut n = max;
        for (k, v) in options.iter() {
            match k.as_str() {
                "concurrency" => {
                    let c = v.as_int().map_err(|_| {
                        invalid(&ctx, "concurrency", "concurrency must be an integer")
                    })?;
                    if c < 1 {
                        return Err(invalid(
                            &ctx,
                            "concurrency",
                            format!("concurrency is {c}; it must be at least 1"),
                        ));
                    }
                    n = (c as usize).min(max);
                }
                other => {
                    return Err(invalid(
                        &ctx,
                        other,
                        format!("unknown option {other:?} (expected concurrency)"),
                    ))
                }
            }
        }
        run_all(&ctx, items, &f, n)
    }
}

fn failure_entry(e: &EvalAltResult, item: Dynamic) -> Dynamic {
    let mut m = Map::new();
    m.insert("error".into(), crate::script::diagnostics::error_value(e));
    m.insert("item".into(), item);
    m.into()
}

/// Stops the whole call: Ctrl-C, or `exit()` inside an item.
fn is_stop(e: &EvalAltResult) -> bool {
    matches!(e, EvalAltResult::ErrorTerminated(..))
        || matches!(e, EvalAltResult::ErrorInFunctionCall(_, _, inner, _) if is_stop(inner))
}

fn unwrap_stop(e: Box<EvalAltResult>) -> Box<EvalAltResult> {
    if let EvalAltResult::ErrorInFunctionCall(_, _, inner, _) = *e {
        return unwrap_stop(inner);
    }
    e
}

fn progress(len: usize) -> Option<indicatif::ProgressBar> {
    use std::io::IsTerminal;
    if len < 2 || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(len as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:30} {pos}/{len} items  {elapsed_precise}  eta {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    Some(bar)
}

fn run_all(
    ctx: &NativeCallContext,
    items: Array,
    f: &FnPtr,
    concurrency: usize,
) -> RhaiResult<Array> {
    let h = host(ctx)?;
    let bar = progress(items.len());
    let count = |ok: bool| {
        let c = if ok { &h.items_ok } else { &h.items_failed };
        c.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    };
    let program = h.program();
    let result = match program {
        Some(program) if concurrency > 1 && items.len() > 1 => {
            run_workers(&h, &program, items, f, concurrency, bar.as_ref(), &count)
        }
        _ => {
            let mut out = Array::with_capacity(items.len());
            for item in items {
                match f.call_within_context::<Dynamic>(ctx, (item.clone(),)) {
                    Ok(v) => {
                        count(true);
                        out.push(v)
                    }
                    Err(e) if is_stop(&e) => return Err(unwrap_stop(e)),
                    Err(e) => {
                        count(false);
                        out.push(failure_entry(&e, item))
                    }
                }
                if let Some(b) = &bar {
                    b.inc(1);
                }
            }
            Ok(out)
        }
    };
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    result
}

/// A pool of `concurrency` threads, each with its own engine over the same
/// compiled script, taking items in order from a shared counter.
fn run_workers(
    h: &std::sync::Arc<crate::script::host::Host>,
    program: &crate::script::host::Program,
    items: Array,
    f: &FnPtr,
    concurrency: usize,
    bar: Option<&indicatif::ProgressBar>,
    count: &(dyn Fn(bool) + Sync),
) -> RhaiResult<Array> {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let slots: Vec<std::sync::Mutex<Option<Dynamic>>> =
        items.iter().map(|_| std::sync::Mutex::new(None)).collect();
    let stopped: std::sync::Mutex<Option<Box<EvalAltResult>>> = std::sync::Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..concurrency.min(items.len()) {
            scope.spawn(|| {
                let mut engine = crate::script::engine(
                    Some(h.clone()),
                    program.sources.clone(),
                    program.print_to,
                );
                crate::script::register_imports(
                    &mut engine,
                    &program.imports,
                    &program.sources,
                    program.ast.source(),
                );
                loop {
                    if stop.load(Ordering::Relaxed) || h.bridge.is_cancelled() {
                        break;
                    }
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    let value = match f.call::<Dynamic>(&engine, &program.ast, (item.clone(),)) {
                        Ok(v) => {
                            count(true);
                            v
                        }
                        Err(e) if is_stop(&e) => {
                            stop.store(true, Ordering::Relaxed);
                            stopped
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .get_or_insert(unwrap_stop(e));
                            break;
                        }
                        Err(e) => {
                            count(false);
                            failure_entry(&e, item.clone())
                        }
                    };
                    *slots[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(value);
                    if let Some(b) = bar {
                        b.inc(1);
                    }
                }
            });
        }
    });
    if let Some(e) = stopped.into_inner().unwrap_or_else(|e| e.into_inner()) {
        return Err(e);
    }
    if h.bridge.is_cancelled() {
        return Err(Box::new(EvalAltResult::ErrorTerminated(
            Dynamic::UNIT,
            rhai::Position::NONE,
        )));
    }
    Ok(slots
        .into_iter()
        .map(|s| {
            s.into_inner()
                .unwrap_or_else(|e| e.into_inner())
                .unwrap_or(Dynamic::UNIT)
        })
        .collect())
}
