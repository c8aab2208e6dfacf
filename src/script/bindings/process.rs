//! `sh`: commands for deploy steps and the like.

use crate::process::{Outcome, Program};
use crate::script::bindings::host;
use crate::script::convert::{check, invalid, RhaiResultOf};
use crate::script::table::map_of;
use rhai::plugin::*;
use rhai::{Array, Dynamic, Map, NativeCallContext, INT};
use std::time::Duration;

/// A command: a string (run by `sh -c`) or an array (program and arguments, no shell).
pub fn program_of(ctx: &NativeCallContext, v: &Dynamic) -> RhaiResultOf<Program> {
    if v.is_string() {
        let s = v.clone().into_string().unwrap_or_default();
        if s.trim().is_empty() {
            return Err(invalid(ctx, "command", "the command is empty"));
        }
        return Ok(Program::Shell(s));
    }
    if let Some(a) = v.read_lock::<Array>() {
        let argv: Vec<String> = a.iter().map(|x| x.to_string()).collect();
        if argv.is_empty() {
            return Err(invalid(ctx, "command", "the command array is empty"));
        }
        return Ok(Program::Argv(argv));
    }
    Err(invalid(
        ctx,
        "command",
        format!("a command is a string or an array, not {}", v.type_name()),
    ))
}

/// `#{ok, status, stdout, stderr, timed_out}`; a dry run's skipped command looks successful.
pub fn outcome_map(o: Option<&Outcome>, timeout: Duration) -> Map {
    match o {
        None => map_of(&[
            ("ok", true.into()),
            ("status", Dynamic::from(0 as INT)),
            ("stdout", "".into()),
            ("stderr", "".into()),
            ("timed_out", false.into()),
        ]),
        Some(o) => {
            let mut stderr = o.stderr.clone();
            if o.timed_out {
                stderr.push_str(&format!("(mdops: the command {})\n", o.describe(timeout)));
            }
            map_of(&[
                ("ok", o.success().into()),
                ("status", Dynamic::from(o.code.unwrap_or(-1) as INT)),
                ("stdout", o.stdout.clone().into()),
                ("stderr", stderr.into()),
                ("timed_out", o.timed_out.into()),
            ])
        }
    }
}

#[export_module]
pub mod api {
    use super::*;

    /// Runs a command and returns `#{ok, status, stdout, stderr, timed_out}`: a string
    /// runs through `sh -c`, an array `[program, arg, ...]` directly. It runs in its own
    /// process group, is killed with everything it started after `--command-timeout`
    /// (default 120 s) or on Ctrl-C, and known secrets are redacted from its output.
    /// The run goes on as soon as the command exits, even if something it started in the
    /// background keeps running. To hand a command a secret use `secrets::to_command`
    /// or `secrets::check_command`. A dry run only plans it.
    #[rhai_fn(return_raw, volatile)]
    pub fn sh(ctx: NativeCallContext, command: Dynamic) -> RhaiResultOf<Map> {
        let h = host(&ctx)?;
        let program = program_of(&ctx, &command)?;
        let outcome = check(&ctx, h.run_command("run", program, vec![]))?;
        Ok(outcome_map(outcome.as_ref(), h.options.command_timeout))
    }
}
