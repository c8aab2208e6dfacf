//! AWS Secrets Manager for the tests: `moto` (PyPI `moto[server]`, a widely
//! used implementation of the AWS APIs) on 127.0.0.1 with a random port, one
//! per test process, tied to a thread that lives as long as the process (it
//! dies with it). Found as `$MDOPS_MOTO_SERVER`, `moto_server` on the PATH, or
//! `target/moto-venv/bin/moto_server` (where `.ci/run` installs it). Without
//! it the AWS tests say they were skipped; `MDOPS_REQUIRE_MOTO=1` (set by
//! `.ci/run`) turns that into a failure.

use std::io::BufRead;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

static SERVER: OnceLock<Result<String, String>> = OnceLock::new();

fn binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("MDOPS_MOTO_SERVER") {
        return Some(PathBuf::from(p));
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if dir.join("moto_server").is_file() {
                return Some(dir.join("moto_server"));
            }
        }
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/moto-venv/bin/moto_server");
    venv.is_file().then_some(venv)
}

/// The endpoint URL of the shared server, or `None` (after saying so).
pub fn endpoint(test: &str) -> Option<String> {
    match SERVER.get_or_init(start) {
        Ok(url) => Some(url.clone()),
        Err(why) if binary().is_some() => panic!("moto is installed but {why}"),
        Err(why) => {
            if std::env::var("MDOPS_REQUIRE_MOTO").is_ok_and(|v| v == "1") {
                panic!("moto is required (MDOPS_REQUIRE_MOTO=1) but {why}");
            }
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED {test}: {why} (pip install 'moto[server]', or run .ci/run, to run it)"
            );
            None
        }
    }
}

fn start() -> Result<String, String> {
    let bin = binary().ok_or("moto_server was not found")?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let (tx, rx) = std::sync::mpsc::channel::<Result<(), String>>();
    let mut cmd = Command::new(bin);
    cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: prctl is async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    std::thread::Builder::new()
        .name("moto".into())
        .spawn(move || {
            let mut child = match cmd.spawn() {
                Ok(c) => c,
                Err(e) => {
                    let _ = tx.send(Err(format!("cannot start moto_server: {e}")));
                    return;
                }
            };
            let stdout = child.stdout.take().unwrap();
            std::thread::spawn(move || for _ in std::io::BufReader::new(stdout).lines() {});
            let mut told = false;
            let mut seen = String::new();
            for line in std::io::BufReader::new(child.stderr.take().unwrap()).lines() {
                let Ok(line) = line else { break };
                if !told && line.contains("Running on http://") {
                    told = true;
                    let _ = tx.send(Ok(()));
                } else if !told {
                    seen.push_str(&line);
                    seen.push('\n');
                }
            }
            if !told {
                let _ = tx.send(Err(format!(
                    "moto_server exited before it was ready: {seen}"
                )));
            }
            let _ = child.wait();
            loop {
                std::thread::park();
            }
        })
        .map_err(|e| e.to_string())?;
    rx.recv_timeout(std::time::Duration::from_secs(120))
        .map_err(|_| "moto_server did not become ready in 120 s".to_string())??;
    Ok(format!("http://127.0.0.1:{port}"))
}

/// One Secrets Manager call, as a test looks at the server (moto does not
/// check signatures; the region comes from the credential scope).
pub fn call(endpoint: &str, op: &str, body: serde_json::Value) -> serde_json::Value {
    let answer = crate::support::http()
        .post(endpoint)
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-target", format!("secretsmanager.{op}"))
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/secretsmanager/aws4_request, SignedHeaders=host, Signature=0",
        )
        .body(body.to_string())
        .send()
        .unwrap();
    answer.json().unwrap_or(serde_json::Value::Null)
}
