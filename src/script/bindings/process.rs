//! `sh`: commands for deploy steps and the like.

use crate::process::Outcome;
use crate::script::bindings::host;
use crate::script::bindings::secrets::program_of;
use crate::script::convert::check;
use crate::script::convert::ScriptResult;
use crate::script::table::map_of;
use rhai::plugin::*;
use rhai::{Dynamic, Map, NativeCallContext, INT};
use std::time::Duration;

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
    pub fn sh(ctx: NativeCallContext, command: Dynamic) -> ScriptResult<Map> {
        let h = host(&ctx)?;
        let program = program_of(&ctx, &command)?;
        let outcome = check(&ctx, h.run_command("run", program, vec![]))?;
        Ok(outcome_map(outcome.as_ref(), h.options.command_timeout))
    }
}
