//! Where a secret goes when a script delivers it: a file, one line of an env
//! file, or a command's standard input. Files are written whole (temp file and
//! rename) with mode 0600 and read back to check what landed.

use crate::api::SecretString;
use crate::fsutil::write_private;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long a sink command may run before it is killed.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

fn check_dir(path: &Path) -> Result<(), String> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => return Ok(()),
    };
    if !dir.is_dir() {
        return Err(format!(
            "cannot write {}: directory {} does not exist",
            path.display(),
            dir.display()
        ));
    }
    Ok(())
}

fn verify_readback(path: &Path, expected: &str) -> Result<(), String> {
    let back = std::fs::read_to_string(path)
        .map_err(|e| format!("wrote {} but cannot read it back: {e}", path.display()))?;
    if back != expected {
        return Err(format!(
            "wrote {} but it reads back differently (another writer?)",
            path.display()
        ));
    }
    Ok(())
}

/// Writes the secret (and a newline) as the whole content of `path`. Returns
/// what the file held before (its first line), so a failed rotation can put it back.
pub fn to_file(path: &Path, secret: &SecretString) -> Result<Option<SecretString>, String> {
    check_dir(path)?;
    let previous = std::fs::read_to_string(path)
        .ok()
        .and_then(|t| t.lines().next().map(str::trim).map(String::from))
        .filter(|t| !t.is_empty())
        .map(SecretString::new);
    let content = format!("{}\n", secret.expose());
    write_private(path, content.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    verify_readback(path, &content)?;
    Ok(previous)
}

pub fn valid_env_key(key: &str) -> bool {
    key.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Sets `KEY=value` in an env file: replaces the line that sets KEY (also
/// `export KEY=`), or appends one; every other line stays as it was. Returns
/// the value KEY had before, if any.
pub fn to_env_file(
    path: &Path,
    key: &str,
    secret: &SecretString,
) -> Result<Option<SecretString>, String> {
    if !valid_env_key(key) {
        return Err(format!(
            "invalid env key {key:?}: use letters, digits and _, not starting with a digit"
        ));
    }
    check_dir(path)?;
    let value = secret.expose();
    if value.contains(['\n', '\r']) {
        return Err("the secret contains a line break and cannot go in an env file".into());
    }
    let existing = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let sets_key = |line: &str| {
        let l = line.trim_start();
        let l = l.strip_prefix("export ").map(str::trim_start).unwrap_or(l);
        l.strip_prefix(key)
            .is_some_and(|rest| rest.trim_start().starts_with('='))
    };
    let needs_quotes = value
        .chars()
        .any(|c| c.is_whitespace() || "#'\"$`\\".contains(c));
    let rendered = if needs_quotes {
        format!("{key}='{}'", value.replace('\'', "'\\''"))
    } else {
        format!("{key}={value}")
    };
    let mut lines: Vec<String> = Vec::new();
    let mut replaced = false;
    let mut previous = None;
    for line in existing.lines() {
        if sets_key(line) {
            if previous.is_none() {
                let raw = line.split_once('=').map(|(_, v)| v.trim()).unwrap_or("");
                let unquoted = raw
                    .strip_prefix('\'')
                    .and_then(|v| v.strip_suffix('\''))
                    .map(|v| v.replace("'\\''", "'"))
                    .unwrap_or_else(|| raw.trim_matches('"').to_string());
                previous = Some(SecretString::new(unquoted));
            }
            if !replaced {
                lines.push(rendered.clone());
                replaced = true;
            }
        } else {
            lines.push(line.to_string());
        }
    }
    if !replaced {
        lines.push(rendered);
    }
    let content = format!("{}\n", lines.join("\n"));
    write_private(path, content.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    verify_readback(path, &content)?;
    Ok(previous)
}

/// Runs `command` (through `sh -c`, or the program and arguments given) with the
/// secret and a newline on its standard input, never in its arguments or
/// environment. A non-zero exit is an error carrying the command's stderr.
pub fn to_command(command: &[String], secret: &SecretString) -> Result<(), String> {
    let (program, args): (&str, Vec<&str>) = match command {
        [] => return Err("the sink command is empty".into()),
        [one] => ("sh", vec!["-c", one.as_str()]),
        [p, rest @ ..] => (p.as_str(), rest.iter().map(String::as_str).collect()),
    };
    let shown = command.join(" ");
    let mut child = Command::new(program)
        .args(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run sink command `{shown}`: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A command that exits without reading is judged by its exit status below.
        let _ = stdin.write_all(format!("{}\n", secret.expose()).as_bytes());
    }
    let mut stderr = child.stderr.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        buf
    });
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() > COMMAND_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "sink command `{shown}` did not finish within {}s and was killed",
                    COMMAND_TIMEOUT.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(format!("sink command `{shown}`: {e}")),
        }
    };
    let err = String::from_utf8_lossy(&reader.join().unwrap_or_default()).into_owned();
    if status.success() {
        return Ok(());
    }
    // A command may echo what it was given: never let the secret through.
    let err = err.replace(secret.expose(), &secret.redacted());
    let tail: Vec<&str> = err
        .trim()
        .lines()
        .rev()
        .take(20)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let code = status
        .code()
        .map(|c| format!("exit code {c}"))
        .unwrap_or_else(|| "a signal".into());
    if tail.is_empty() {
        Err(format!("sink command `{shown}` failed with {code}"))
    } else {
        Err(format!(
            "sink command `{shown}` failed with {code}: {}",
            tail.join("\n")
        ))
    }
}

/// What a command did.
pub struct CommandResult {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl CommandResult {
    pub fn into_map(self) -> rhai::Map {
        crate::script::table::map_of(&[
            ("ok", (self.status == 0).into()),
            ("status", rhai::Dynamic::from(self.status as i64)),
            ("stdout", self.stdout.into()),
            ("stderr", self.stderr.into()),
        ])
    }
}

/// Runs `command` through `sh -c`, optionally with one secret in its
/// environment; output is captured (and the secret redacted from it).
pub fn run_command(
    command: &str,
    env: Option<(&str, &SecretString)>,
) -> Result<CommandResult, String> {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", command]).stdin(Stdio::null());
    if let Some((key, secret)) = env {
        cmd.env(key, secret.expose());
    }
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run `{command}`: {e}"))?;
    let clean = |b: &[u8]| {
        let text = String::from_utf8_lossy(b).into_owned();
        match env {
            Some((_, s)) if !s.expose().is_empty() => text.replace(s.expose(), &s.redacted()),
            _ => text,
        }
    };
    Ok(CommandResult {
        status: out.status.code().unwrap_or(-1),
        stdout: clean(&out.stdout),
        stderr: clean(&out.stderr),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_file_replaces_one_line_and_keeps_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("app.env");
        std::fs::write(
            &p,
            "# app\nA=1\nexport MD_TOKEN=old\nB=two words\nMD_TOKEN=dup\n",
        )
        .unwrap();
        let prev = to_env_file(&p, "MD_TOKEN", &SecretString::new("new.value")).unwrap();
        assert_eq!(prev.unwrap().expose(), "old");
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            "# app\nA=1\nMD_TOKEN=new.value\nB=two words\n"
        );
        to_env_file(&p, "OTHER", &SecretString::new("it's")).unwrap();
        assert!(std::fs::read_to_string(&p)
            .unwrap()
            .ends_with("OTHER='it'\\''s'\n"));
        assert!(to_env_file(&p, "1BAD", &SecretString::new("x")).is_err());
    }

    #[test]
    fn file_sink_needs_an_existing_directory() {
        let dir = tempfile::tempdir().unwrap();
        let e = to_file(&dir.path().join("nope/token"), &SecretString::new("x")).unwrap_err();
        assert!(e.contains("does not exist"), "{e}");
    }

    #[test]
    fn command_gets_the_secret_on_stdin_and_failures_are_redacted() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("got");
        to_command(
            &[format!("cat > {}", out.display())],
            &SecretString::new("s3cret"),
        )
        .unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "s3cret\n");
        let e = to_command(
            &["cat >&2; exit 3".to_string()],
            &SecretString::new("s3cret"),
        )
        .unwrap_err();
        assert!(
            e.starts_with("sink command `cat >&2; exit 3` failed with exit code 3: <secret "),
            "{e}"
        );
        assert!(!e.contains("s3cret"));
    }
}
