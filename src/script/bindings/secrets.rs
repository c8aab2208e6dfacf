//! `secrets::` — deliver a secret somewhere safe: a file, an env file, a command.

use rhai::plugin::*;

use crate::api::SecretString;
use crate::script::bindings::host;
use crate::script::convert::{invalid, script_error, RhaiResult};
use rhai::{Dynamic, Map};

/// A `Secret`, or a plain string the script already revealed.
pub fn secret_of(ctx: &NativeCallContext, v: &Dynamic) -> RhaiResult<SecretString> {
    if let Some(s) = v.read_lock::<SecretString>() {
        return Ok(s.clone());
    }
    if v.is_string() {
        return Ok(SecretString::new(
            v.clone().into_string().unwrap_or_default(),
        ));
    }
    Err(invalid(
        ctx,
        "secret",
        format!("expected a Secret or a string, got {}", v.type_name()),
    ))
}

/// Performs (or in a dry run, plans) a delivery and journals it. `write`
/// returns what the sink held before, if it can tell.
pub fn deliver(
    ctx: &NativeCallContext,
    sink: String,
    secret: &SecretString,
    write: impl FnOnce() -> Result<Option<SecretString>, String>,
) -> RhaiResult<Map> {
    let h = host(ctx)?;
    let mut out = Map::new();
    out.insert("sink".into(), sink.clone().into());
    out.insert("fingerprint".into(), secret.fingerprint().into());
    if h.options.dry_run {
        h.plan("deliver secret", &sink, Some(format!("{}", secret)));
        return Ok(out);
    }
    if let Some(previous) = write().map_err(|e| script_error(ctx, "sink", e))? {
        out.insert("previous".into(), Dynamic::from(previous));
    }
    match h.store() {
        Ok(store) => match store.journal_delivered(&store.fingerprint(secret), &sink) {
            Ok(Some(entry)) => {
                out.insert("token_id".into(), entry.token_id.into());
            }
            Ok(None) => {}
            Err(e) => h.warn(&format!(
                "delivered to {sink} but the journal could not record it: {}",
                e.0
            )),
        },
        Err(e) => h.warn(&format!(
            "delivered to {sink} but the journal is unavailable: {e}"
        )),
    }
    Ok(out)
}

#[export_module]
pub mod api {
    use super::*;
    use rhai::{Array, NativeCallContext};

    /// Writes the secret (and a newline) to `path`: atomically (a temporary file
    /// renamed into place), with mode 0600, then reads it back to check. The directory
    /// must exist. Returns `#{sink, fingerprint, token_id, previous}`: `previous` is the
    /// `Secret` the file held before (to put back if a rotation fails), when there was one.
    #[rhai_fn(return_raw, volatile)]
    pub fn to_file(ctx: NativeCallContext, path: &str, secret: Dynamic) -> RhaiResult<Map> {
        let secret = secret_of(&ctx, &secret)?;
        let p = std::path::PathBuf::from(path);
        deliver(&ctx, format!("file:{path}"), &secret, || {
            crate::sinks::to_file(&p, &secret)
        })
    }

    /// Sets one `KEY=value` line in the env file at `path` (replacing the line that
    /// sets KEY, or adding one) and keeps every other line; atomic, mode 0600.
    /// Returns `#{sink, fingerprint, token_id, previous}` like `to_file`.
    #[rhai_fn(return_raw, volatile)]
    pub fn to_env_file(
        ctx: NativeCallContext,
        path: &str,
        key: &str,
        secret: Dynamic,
    ) -> RhaiResult<Map> {
        let secret = secret_of(&ctx, &secret)?;
        let p = std::path::PathBuf::from(path);
        deliver(&ctx, format!("env-file:{path}#{key}"), &secret, || {
            crate::sinks::to_env_file(&p, key, &secret)
        })
    }

    /// Runs `command` through `sh -c` with the secret on its standard input (never
    /// in its arguments or environment). A non-zero exit is an error that carries the
    /// command's stderr.
    #[rhai_fn(name = "to_command", return_raw, volatile)]
    pub fn to_command(ctx: NativeCallContext, command: &str, secret: Dynamic) -> RhaiResult<Map> {
        let secret = secret_of(&ctx, &secret)?;
        let cmd = vec![command.to_string()];
        deliver(&ctx, format!("command:{command}"), &secret, || {
            crate::sinks::to_command(&cmd, &secret).map(|_| None)
        })
    }

    /// Runs `command` through `sh -c` with the secret in environment variable
    /// `env_key` (for a check such as "can the workload connect with this token?").
    /// Returns `#{ok, status, stdout, stderr}` with the secret redacted from the output.
    #[rhai_fn(return_raw, volatile)]
    pub fn check_command(
        ctx: NativeCallContext,
        command: &str,
        env_key: &str,
        secret: Dynamic,
    ) -> RhaiResult<Map> {
        let secret = secret_of(&ctx, &secret)?;
        if !crate::sinks::valid_env_key(env_key) {
            return Err(invalid(
                &ctx,
                "env_key",
                format!("invalid environment variable name {env_key:?}"),
            ));
        }
        let h = host(&ctx)?;
        if h.options.dry_run {
            h.plan(
                "run check",
                command,
                Some(format!("with {env_key}={secret}")),
            );
            return Ok(crate::script::table::map_of(&[
                ("ok", true.into()),
                ("status", Dynamic::from(0_i64)),
            ]));
        }
        let r = crate::sinks::run_command(command, Some((env_key, &secret)))
            .map_err(|e| script_error(&ctx, "command", e))?;
        Ok(r.into_map())
    }

    /// Runs the program and arguments `[program, arg, ...]` without a shell, with
    /// the secret on its standard input.
    #[rhai_fn(name = "to_command", return_raw, volatile)]
    pub fn to_command_argv(
        ctx: NativeCallContext,
        command: Array,
        secret: Dynamic,
    ) -> RhaiResult<Map> {
        let secret = secret_of(&ctx, &secret)?;
        let cmd: Vec<String> = command.iter().map(|a| a.to_string()).collect();
        if cmd.is_empty() {
            return Err(invalid(&ctx, "command", "the command array is empty"));
        }
        deliver(&ctx, format!("command:{}", cmd.join(" ")), &secret, || {
            crate::sinks::to_command(&cmd, &secret).map(|_| None)
        })
    }
}
