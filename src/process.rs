//! Running the commands scripts ask for (`sh`, sink and check commands).
//!
//! Each command runs in its own process group with a timeout; on timeout,
//! Ctrl-C or SIGTERM the whole group is killed. Its output goes to anonymous
//! temporary files rather than pipes, so the run goes on as soon as the
//! command itself exits, even if something it started (a daemon) keeps the
//! output open. Known secrets are redacted from what it printed.
//!
//! The array form `["prog", "arg", ...]` is executed directly, never through a
//! shell, whatever its length; only the string form uses `sh -c`. Commands do
//! not inherit the variables the admin token may come from.

use crate::api::SecretString;
use std::collections::HashSet;
use std::io::{Read, Seek, SeekFrom, Write};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a command may run unless `--command-timeout` says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
/// After SIGTERM, how long the group has before SIGKILL.
const KILL_GRACE: Duration = Duration::from_secs(2);
/// At most this much of each output stream is kept.
const OUTPUT_LIMIT: u64 = 1 << 20;

/// Process groups of commands running now, so a hard exit can kill them.
static RUNNING: Mutex<Option<HashSet<i32>>> = Mutex::new(None);

#[derive(Debug, Clone, PartialEq)]
pub enum Program {
    /// Run by `sh -c`.
    Shell(String),
    /// Executed directly: the program and its arguments.
    Argv(Vec<String>),
}

impl Program {
    /// How the command is shown in messages (secrets redacted).
    pub fn shown(&self) -> String {
        let text = match self {
            Program::Shell(s) => s.clone(),
            Program::Argv(a) => a.join(" "),
        };
        crate::output::escape(&crate::redact::clean(&text)).into_owned()
    }
}

pub struct Spec<'a> {
    pub program: Program,
    /// Written to the command's standard input, then closed.
    pub stdin: Option<Vec<u8>>,
    pub env: Vec<(String, SecretString)>,
    pub timeout: Duration,
    /// Polled while the command runs: true stops it (Ctrl-C, SIGTERM).
    pub cancelled: &'a (dyn Fn() -> bool + Sync),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The exit code; `None` when a signal ended it.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    /// Killed because it ran past its timeout.
    pub timed_out: bool,
    /// Killed because the run was interrupted.
    pub cancelled: bool,
}

impl Outcome {
    pub fn success(&self) -> bool {
        self.code == Some(0) && !self.timed_out && !self.cancelled
    }

    /// `exit code 3`, `a signal`, `the timeout (120s)`.
    pub fn describe(&self, timeout: Duration) -> String {
        if self.timed_out {
            format!(
                "did not finish within {}s and was killed with its process group",
                timeout.as_secs()
            )
        } else if self.cancelled {
            "was interrupted and killed with its process group".into()
        } else {
            match self.code {
                Some(c) => format!("failed with exit code {c}"),
                None => "was ended by a signal".into(),
            }
        }
    }
}

fn register(pgid: i32) {
    RUNNING
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_or_insert_with(HashSet::new)
        .insert(pgid);
}

fn unregister(pgid: i32) {
    if let Some(set) = RUNNING.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
        set.remove(&pgid);
    }
}

/// Kills every command group still running (before a hard exit).
pub fn kill_all() {
    let groups: Vec<i32> = RUNNING
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .map(|s| s.iter().copied().collect())
        .unwrap_or_default();
    for g in groups {
        signal_group(g, true);
    }
}

#[cfg(unix)]
fn signal_group(pgid: i32, hard: bool) {
    let sig = if hard { libc::SIGKILL } else { libc::SIGTERM };
    // SAFETY: kill(2) with a negative pid signals that process group; no memory is touched.
    unsafe {
        libc::kill(-pgid, sig);
    }
}

#[cfg(not(unix))]
fn signal_group(_pgid: i32, _hard: bool) {}

fn read_back(mut f: std::fs::File) -> String {
    let mut buf = Vec::new();
    let _ = f.seek(SeekFrom::Start(0));
    let _ = (&mut f).take(OUTPUT_LIMIT).read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    crate::redact::cleaned(&text)
}

/// Runs a command to completion (or to its timeout, or until cancelled).
/// `Err` only when it could not be started.
pub fn run(spec: Spec<'_>) -> Result<Outcome, String> {
    let shown = spec.program.shown();
    let mut cmd = match &spec.program {
        Program::Shell(s) => {
            let mut c = Command::new("sh");
            c.arg("-c").arg(s);
            c
        }
        Program::Argv(argv) => {
            let (first, rest) = argv
                .split_first()
                .ok_or_else(|| "the command is empty".to_string())?;
            let mut c = Command::new(first);
            c.args(rest);
            c
        }
    };
    // A command never inherits mdops's own credentials (the admin token, the
    // state database's password): what it needs, it is given.
    for var in crate::settings::TOKEN_VARS
        .iter()
        .chain(crate::settings::STATE_VARS.iter())
    {
        cmd.env_remove(var);
    }
    for (k, v) in &spec.env {
        cmd.env(k, v.expose());
    }
    let out = tempfile::tempfile().map_err(|e| format!("cannot run `{shown}`: {e}"))?;
    let err = tempfile::tempfile().map_err(|e| format!("cannot run `{shown}`: {e}"))?;
    cmd.stdout(Stdio::from(out.try_clone().map_err(|e| e.to_string())?))
        .stderr(Stdio::from(err.try_clone().map_err(|e| e.to_string())?))
        .stdin(if spec.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot run `{shown}`: {e}"))?;
    let pgid = child.id() as i32;
    register(pgid);
    if let (Some(data), Some(mut stdin)) = (spec.stdin, child.stdin.take()) {
        // A command that exits without reading is judged by its exit status.
        std::thread::spawn(move || {
            let _ = stdin.write_all(&data);
        });
    }
    let (tx, rx) = std::sync::mpsc::channel::<std::io::Result<ExitStatus>>();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    let started = Instant::now();
    let mut timed_out = false;
    let mut cancelled = false;
    let mut killed_at: Option<Instant> = None;
    let status = loop {
        match rx.recv_timeout(Duration::from_millis(20)) {
            Ok(status) => break status,
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                break Err(std::io::Error::other("the waiter went away"))
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
        }
        match killed_at {
            None => {
                if started.elapsed() >= spec.timeout {
                    timed_out = true;
                } else if (spec.cancelled)() {
                    cancelled = true;
                }
                if timed_out || cancelled {
                    signal_group(pgid, false);
                    killed_at = Some(Instant::now());
                }
            }
            Some(at) if at.elapsed() >= KILL_GRACE => {
                signal_group(pgid, true);
                killed_at = Some(Instant::now() + Duration::from_secs(3600));
            }
            Some(_) => {}
        }
    };
    if timed_out || cancelled {
        // What the command started goes with it.
        signal_group(pgid, true);
    }
    unregister(pgid);
    let status = status.map_err(|e| format!("`{shown}`: {e}"))?;
    Ok(Outcome {
        code: status.code(),
        stdout: read_back(out),
        stderr: read_back(err),
        timed_out,
        cancelled,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn never() -> bool {
        false
    }

    fn spec(program: Program, timeout: Duration) -> Spec<'static> {
        Spec {
            program,
            stdin: None,
            env: vec![],
            timeout,
            cancelled: &never,
        }
    }

    #[test]
    fn a_background_grandchild_does_not_hold_the_run() {
        let started = Instant::now();
        let out = run(spec(
            Program::Shell("(sleep 5) & echo started".into()),
            Duration::from_secs(30),
        ))
        .unwrap();
        assert!(out.success());
        assert_eq!(out.stdout, "started\n");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
    }

    /// Whether a process is gone (reaped), waiting up to `within` for it to go.
    fn gone(pid: i32, within: Duration) -> bool {
        let until = Instant::now() + within;
        loop {
            // SAFETY: signal 0 only checks whether the process exists.
            if unsafe { libc::kill(pid, 0) } != 0 {
                return true;
            }
            if Instant::now() > until {
                return false;
            }
            std::thread::yield_now();
        }
    }

    #[test]
    fn a_timeout_kills_the_whole_group() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        let script = format!(
            "sh -c 'echo $$ > {}; exec sleep 30' & while [ ! -s {} ]; do :; done; sleep 30",
            pidfile.display(),
            pidfile.display()
        );
        let out = run(spec(Program::Shell(script), Duration::from_millis(300))).unwrap();
        assert!(out.timed_out);
        assert!(!out.success());
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(
            gone(pid, Duration::from_secs(10)),
            "the grandchild outlived the timeout"
        );
    }

    #[test]
    fn the_array_form_never_uses_a_shell() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("X");
        let out = run(spec(
            Program::Argv(vec![format!("cat>/dev/null; touch {}", marker.display())]),
            Duration::from_secs(5),
        ));
        assert!(out.is_err(), "no such program: {out:?}");
        assert!(!marker.exists());
        let out = run(spec(
            Program::Argv(vec!["echo".into(), "a;b".into()]),
            Duration::from_secs(5),
        ))
        .unwrap();
        assert_eq!(out.stdout, "a;b\n");
    }
}
