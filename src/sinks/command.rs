//! A secret on a command's standard input (never in its arguments or
//! environment): the string form through `sh -c`, the array form directly.

use crate::api::SecretString;
use crate::process::{Outcome, Program, Spec};
use std::time::Duration;

/// Runs the command with the secret and a newline on its standard input. A
/// failure carries the end of its stderr, with secrets redacted.
pub fn to_command(
    program: &Program,
    secret: &SecretString,
    timeout: Duration,
    cancelled: &(dyn Fn() -> bool + Sync),
) -> Result<Outcome, String> {
    let shown = program.shown();
    let outcome = crate::process::run(Spec {
        program: program.clone(),
        stdin: Some(format!("{}\n", secret.expose()).into_bytes()),
        env: vec![],
        timeout,
        cancelled,
    })?;
    if outcome.success() {
        return Ok(outcome);
    }
    // The process layer redacts known secrets; this one may not be known yet.
    let err = outcome.stderr.replace(secret.expose(), &secret.redacted());
    let tail: Vec<&str> = err.trim().lines().rev().take(20).collect::<Vec<_>>();
    let tail: Vec<String> = tail
        .into_iter()
        .rev()
        .map(|l| crate::output::escape(l).into_owned())
        .collect();
    let what = outcome.describe(timeout);
    if tail.is_empty() {
        Err(format!("sink command `{shown}` {what}"))
    } else {
        Err(format!(
            "sink command `{shown}` {what}: {}",
            tail.join("\n")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn never() -> bool {
        false
    }

    #[test]
    fn gets_the_secret_on_stdin_and_failures_are_redacted() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("got");
        let secret = SecretString::new("s3cret-on-stdin-000");
        to_command(
            &Program::Shell(format!("cat > {}", out.display())),
            &secret,
            Duration::from_secs(10),
            &never,
        )
        .unwrap();
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "s3cret-on-stdin-000\n"
        );
        let e = to_command(
            &Program::Shell("cat >&2; exit 3".into()),
            &secret,
            Duration::from_secs(10),
            &never,
        )
        .unwrap_err();
        assert!(
            e.starts_with("sink command `cat >&2; exit 3` failed with exit code 3: <secret "),
            "{e}"
        );
        assert!(!e.contains("s3cret"));
    }
}
