//! `parallel()`: a pool of worker threads, each with its own engine over the
//! same compiled script, taking items in order from a shared counter.
//!
//! An item fails when its call throws, or when its result is a map with a
//! non-empty `error` (the convention every bundled workflow follows); the
//! run's summary and exit code count both. Some failures stop every worker:
//! `exit()`, Ctrl-C or SIGTERM, `--max-writes`, and the API refusing the
//! credentials (401/403: nothing else would work either; exit 3).

use crate::script::bindings::exit::terminate;
use crate::script::bindings::host;
use crate::script::convert::invalid;
use crate::script::convert::RhaiResultOf;
use crate::script::host::{Host, Program};
use rhai::plugin::*;
use rhai::{Array, Dynamic, EvalAltResult, FnPtr, Map, NativeCallContext, INT};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

#[export_module]
pub mod api {
    use super::*;

    /// Calls `f(item)` for each item, several at a time (`--concurrency`, default 8),
    /// and returns the results in input order. An item whose call throws yields
    /// `#{error, item}` in its place; the others go on. An item counts as failed in the
    /// run's summary (and makes the run end with exit 4) when it throws or returns a map
    /// with a non-empty `error`. `f` should be a closure or a function of the script;
    /// each worker runs it on its own engine, so it sees the script's functions and
    /// imports but not its global variables (pass what it needs, or capture it). Each
    /// worker gets its own copy of what the closure captured: a change one call makes
    /// to a captured variable is seen neither by the other workers nor after
    /// `parallel()` returns, so return what you need instead.
    #[rhai_fn(name = "parallel", return_raw, volatile)]
    pub fn parallel(ctx: NativeCallContext, items: Array, f: FnPtr) -> RhaiResultOf<Array> {
        let h = host(&ctx)?;
        let n = h.options.concurrency.max(1);
        run_counted(&ctx, items, &f, n, true)
    }

    /// `parallel(items, f)` over a range of integers (`0..n`).
    #[rhai_fn(name = "parallel", return_raw, volatile)]
    pub fn parallel_range(
        ctx: NativeCallContext,
        range: std::ops::Range<INT>,
        f: FnPtr,
    ) -> RhaiResultOf<Array> {
        parallel(ctx, range.map(Dynamic::from).collect(), f)
    }

    /// `parallel(items, f)` over an inclusive range of integers (`0..=n`).
    #[rhai_fn(name = "parallel", return_raw, volatile)]
    pub fn parallel_range_inclusive(
        ctx: NativeCallContext,
        range: std::ops::RangeInclusive<INT>,
        f: FnPtr,
    ) -> RhaiResultOf<Array> {
        parallel(ctx, range.map(Dynamic::from).collect(), f)
    }

    /// `parallel(items, f)` with options `#{concurrency, count}`: at most `concurrency`
    /// at a time (capped by `--concurrency`); `count: false` leaves these items out of
    /// the run's summary and exit code (for a read-only pass that plans the real one).
    #[rhai_fn(name = "parallel", return_raw, volatile)]
    pub fn parallel_with(
        ctx: NativeCallContext,
        items: Array,
        f: FnPtr,
        options: Map,
    ) -> RhaiResultOf<Array> {
        let h = host(&ctx)?;
        let max = h.options.concurrency.max(1);
        let mut n = max;
        let mut count = true;
        for (k, v) in options.iter() {
            match k.as_str() {
                "count" => {
                    count = v
                        .as_bool()
                        .map_err(|_| invalid(&ctx, "count", "count must be true or false"))?
                }
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
                        format!("unknown option {other:?} (expected concurrency, count)"),
                    ))
                }
            }
        }
        run_counted(&ctx, items, &f, n, count)
    }
}

/// What became of one item.
enum Outcome {
    Done(Dynamic),
    Failed(Dynamic),
    /// Every worker stops; the run ends with this.
    Stop(Box<EvalAltResult>),
}

fn failure_entry(e: &EvalAltResult, item: Dynamic) -> Dynamic {
    let mut m = Map::new();
    m.insert("error".into(), crate::script::diagnostics::error_value(e));
    m.insert("item".into(), item);
    m.into()
}

fn innermost(e: &EvalAltResult) -> &EvalAltResult {
    match e {
        EvalAltResult::ErrorInFunctionCall(_, _, inner, _)
        | EvalAltResult::ErrorInModule(_, inner, _) => innermost(inner),
        other => other,
    }
}

/// A map result with a non-empty `error` reports a failure.
fn reports_failure(v: &Dynamic) -> bool {
    v.read_lock::<Map>()
        .and_then(|m| m.get("error").cloned())
        .is_some_and(|e| !(e.is_unit() || e.to_string().is_empty() || e.as_bool() == Ok(false)))
}

/// Whether a failure was the API being unreachable or failing (for exit 6).
fn unavailable(v: &Dynamic) -> bool {
    let Some(m) = v.read_lock::<Map>() else {
        return false;
    };
    let Some(err) = m
        .get("error")
        .and_then(|e| e.read_lock::<Map>().map(|m| m.clone()))
    else {
        return false;
    };
    match err.get("kind").map(|k| k.to_string()).as_deref() {
        Some("network" | "timeout") => true,
        Some("api") => err
            .get("status")
            .and_then(|s| s.as_int().ok())
            .is_some_and(|s| s >= 500 || s == 429),
        _ => false,
    }
}

/// Where an item's outcome is counted: the run's summary, or nowhere.
#[derive(Clone, Copy)]
struct Counting(bool);

impl Counting {
    fn item(self, h: &Host, ok: bool, unavailable: bool) {
        if self.0 {
            h.stats.item(ok, unavailable);
        }
    }
}

fn judge(
    h: &Host,
    counting: Counting,
    result: Result<Dynamic, Box<EvalAltResult>>,
    item: &Dynamic,
) -> Outcome {
    match result {
        Ok(v) => {
            let failed = reports_failure(&v);
            counting.item(h, !failed, failed && unavailable(&v));
            if failed {
                Outcome::Failed(v)
            } else {
                Outcome::Done(v)
            }
        }
        Err(e) => match innermost(&e) {
            EvalAltResult::ErrorTerminated(v, pos) => {
                Outcome::Stop(Box::new(EvalAltResult::ErrorTerminated(v.clone(), *pos)))
            }
            EvalAltResult::ErrorRuntime(v, pos) => {
                let status = v
                    .read_lock::<Map>()
                    .and_then(|m| m.get("status").and_then(|s| s.as_int().ok()));
                if matches!(status, Some(401 | 403)) {
                    let summary = v
                        .read_lock::<Map>()
                        .and_then(|m| m.get("summary").map(|s| s.to_string()))
                        .unwrap_or_default();
                    counting.item(h, false, false);
                    return Outcome::Stop(terminate(3, Some(summary), *pos));
                }
                let entry = failure_entry(&e, item.clone());
                counting.item(h, false, unavailable(&entry));
                Outcome::Failed(entry)
            }
            _ => {
                counting.item(h, false, false);
                Outcome::Failed(failure_entry(&e, item.clone()))
            }
        },
    }
}

fn progress(len: usize, quiet: bool) -> Option<indicatif::ProgressBar> {
    use std::io::IsTerminal;
    if quiet || len < 2 || !std::io::stderr().is_terminal() {
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

fn run_counted(
    ctx: &NativeCallContext,
    items: Array,
    f: &FnPtr,
    concurrency: usize,
    count: bool,
) -> RhaiResultOf<Array> {
    let h = host(ctx)?;
    let counting = Counting(count);
    let bar = progress(items.len(), h.options.quiet);
    let result = match h.program() {
        Some(program) if concurrency > 1 && items.len() > 1 => {
            run_workers(&h, &program, items, f, concurrency, bar.as_ref(), counting)
        }
        _ => {
            let mut out = Array::with_capacity(items.len());
            for item in items {
                let r = f.call_within_context::<Dynamic>(ctx, (item.clone(),));
                match judge(&h, counting, r, &item) {
                    Outcome::Done(v) | Outcome::Failed(v) => out.push(v),
                    Outcome::Stop(e) => {
                        if let Some(b) = &bar {
                            b.finish_and_clear();
                        }
                        return Err(e);
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

/// One item of a `parallel()` call: waiting, being worked on, or its result.
enum Slot {
    Item(Dynamic),
    Taken,
    Done(Dynamic),
}

fn run_workers(
    h: &Arc<Host>,
    program: &Program,
    items: Array,
    f: &FnPtr,
    concurrency: usize,
    bar: Option<&indicatif::ProgressBar>,
    counting: Counting,
) -> RhaiResultOf<Array> {
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let n = items.len();
    // Each slot holds its item until a worker takes it, then its result: an
    // item is dropped as soon as it is done (ten thousand plans need not all
    // stay until the last one is).
    let slots: Vec<Mutex<Slot>> = items
        .into_iter()
        .map(|item| Mutex::new(Slot::Item(item)))
        .collect();
    let stopped: Mutex<Option<Box<EvalAltResult>>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..concurrency.min(n) {
            let worker = std::thread::Builder::new()
                .name("mdops-worker".into())
                .stack_size(crate::script::SCRIPT_STACK);
            let spawned = worker.spawn_scoped(scope, || {
                // Its own copy of what the closure captured (see `unshare`).
                let mut own = Dynamic::from(f.clone());
                crate::script::convert::unshare(&mut own, &mut Default::default());
                let f = own.cast::<FnPtr>();
                let engine = program.engines.take().unwrap_or_else(|| {
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
                    engine
                });
                loop {
                    if stop.load(Ordering::Relaxed)
                        || h.bridge.is_cancelled()
                        || h.stop_reason().is_some()
                    {
                        break;
                    }
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(slot) = slots.get(i) else { break };
                    let item = match std::mem::replace(
                        &mut *slot.lock().unwrap_or_else(|e| e.into_inner()),
                        Slot::Taken,
                    ) {
                        Slot::Item(item) => item,
                        _ => Dynamic::UNIT,
                    };
                    let mut arg = item.clone();
                    crate::script::convert::unshare(&mut arg, &mut Default::default());
                    let r = f.call::<Dynamic>(&engine, &program.ast, (arg,));
                    let value = match judge(h, counting, r, &item) {
                        Outcome::Done(v) | Outcome::Failed(v) => v,
                        Outcome::Stop(e) => {
                            stop.store(true, Ordering::Relaxed);
                            stopped
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .get_or_insert(e);
                            break;
                        }
                    };
                    drop(item);
                    *slot.lock().unwrap_or_else(|e| e.into_inner()) = Slot::Done(value);
                    if let Some(b) = bar {
                        b.inc(1);
                    }
                }
                program.engines.give_back(engine);
            });
            if let Err(e) = spawned {
                stop.store(true, Ordering::Relaxed);
                stopped
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get_or_insert(Box::new(EvalAltResult::ErrorRuntime(
                        format!("cannot start a worker thread: {e}").into(),
                        rhai::Position::NONE,
                    )));
                break;
            }
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
    if let Some(stop) = h.stop_reason() {
        let mut m = Map::new();
        m.insert(
            crate::script::convert::STOP_KEY.into(),
            stop.to_string().into(),
        );
        return Err(Box::new(EvalAltResult::ErrorTerminated(
            m.into(),
            rhai::Position::NONE,
        )));
    }
    Ok(slots
        .into_iter()
        .map(
            |s| match s.into_inner().unwrap_or_else(|e| e.into_inner()) {
                Slot::Done(v) => v,
                Slot::Item(_) | Slot::Taken => Dynamic::UNIT,
            },
        )
        .collect())
}
