//! Ending a run: `exit`, `set_exit_code`, `usage_error`.

use crate::script::bindings::host;
use crate::script::convert::RhaiResultOf;
use crate::script::convert::{invalid, script_error, EXIT_CODE_KEY};
use rhai::plugin::*;
use rhai::{Dynamic, EvalAltResult, Map, NativeCallContext, INT};

/// The key under which a termination value carries the message to print.
pub const MESSAGE_KEY: &str = "mdops_message";

/// A termination that ends the run with `code` (and prints `message`);
/// `try`/`catch` does not intercept it.
pub fn terminate(code: i64, message: Option<String>, pos: rhai::Position) -> Box<EvalAltResult> {
    let mut m = Map::new();
    m.insert(EXIT_CODE_KEY.into(), Dynamic::from(code));
    if let Some(msg) = message {
        m.insert(MESSAGE_KEY.into(), msg.into());
    }
    Box::new(EvalAltResult::ErrorTerminated(m.into(), pos))
}

fn check_code(ctx: &NativeCallContext, code: INT) -> RhaiResultOf<()> {
    if !(0..=255).contains(&code) {
        return Err(invalid(
            ctx,
            "code",
            format!("exit code {code} is not between 0 and 255"),
        ));
    }
    Ok(())
}

#[export_module]
pub mod api {
    use super::*;

    /// Stops the script at once with this process exit code (0–255). By convention
    /// 4 tells cron that a bulk run finished but some items failed. `try`/`catch`
    /// does not intercept it.
    #[rhai_fn(name = "exit", return_raw, volatile)]
    pub fn exit_with(ctx: NativeCallContext, code: INT) -> RhaiResultOf<()> {
        check_code(&ctx, code)?;
        Err(terminate(code, None, ctx.call_position()))
    }

    /// Stops the script at once with this exit code, printing `message` as the error.
    #[rhai_fn(name = "exit", return_raw, volatile)]
    pub fn exit_message(ctx: NativeCallContext, code: INT, message: &str) -> RhaiResultOf<()> {
        check_code(&ctx, code)?;
        Err(terminate(
            code,
            Some(message.to_string()),
            ctx.call_position(),
        ))
    }

    /// Reports a mistake in how the script was called (a bad or missing argument):
    /// the run stops with exit code 2 and `message`, as for a bad flag. Call it before
    /// the first write.
    #[rhai_fn(return_raw, volatile)]
    pub fn usage_error(ctx: NativeCallContext, message: &str) -> RhaiResultOf<()> {
        Err(script_error(&ctx, "usage", message))
    }

    /// Sets the exit code the run ends with, without stopping it: the script
    /// finishes and its result is shown. Without it, a run whose `parallel()` items
    /// failed ends with 4.
    #[rhai_fn(return_raw, volatile)]
    pub fn set_exit_code(ctx: NativeCallContext, code: INT) -> RhaiResultOf<()> {
        check_code(&ctx, code)?;
        host(&ctx)?.set_exit_code(code as i32);
        Ok(())
    }
}
