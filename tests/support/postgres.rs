//! A real PostgreSQL server for the tests, started by the harness itself:
//! `initdb` into a temporary directory, then `postgres` on 127.0.0.1 with a
//! random port (as the unprivileged `nobody` when the tests run as root,
//! since PostgreSQL refuses to run as root). One server per test process;
//! each test gets a database of its own. The server is tied to a thread
//! that lives as long as the process, and dies with it (PR_SET_PDEATHSIG).
//!
//! Without PostgreSQL installed the tests that need it say so on stderr and
//! pass without running; with `MDOPS_REQUIRE_POSTGRES=1` (set by `.ci/run`)
//! a missing server is a failure instead.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

pub struct Server {
    pub port: u16,
    /// Keeps the data directory for the life of the process.
    _dir: PathBuf,
}

static SERVER: OnceLock<Result<Server, String>> = OnceLock::new();
static DATABASES: AtomicUsize = AtomicUsize::new(0);

/// The superuser the harness creates (trust authentication on loopback).
pub const USER: &str = "mdops_test";

/// A fresh database on the shared server, as a state URL; `None` (after
/// saying so) when PostgreSQL is not installed and not required.
pub fn database(test: &str) -> Option<String> {
    let server = match SERVER.get_or_init(start) {
        Ok(s) => s,
        // Installed but failing to start is a failure, never a skip.
        Err(why) if bin_dir().is_some() => panic!("PostgreSQL is installed but {why}"),
        Err(why) => {
            if std::env::var("MDOPS_REQUIRE_POSTGRES").is_ok_and(|v| v == "1") {
                panic!("PostgreSQL is required (MDOPS_REQUIRE_POSTGRES=1) but {why}");
            }
            // Straight to the process's stderr: the test harness captures
            // `eprintln!` of passing tests, and a skip must be seen.
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED {test}: {why} (install PostgreSQL's server, e.g. Debian's postgresql package, to run it)"
            );
            return None;
        }
    };
    let n = DATABASES.fetch_add(1, Ordering::SeqCst);
    let name = format!("t{}_{n}", std::process::id());
    let mut admin = connect(server.port, "postgres");
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .expect("create a test database");
    Some(url(server.port, &name))
}

pub fn url(port: u16, db: &str) -> String {
    format!("postgresql://{USER}@127.0.0.1:{port}/{db}?sslmode=disable")
}

/// A direct connection, for tests that look at the database themselves.
pub fn connect(port: u16, db: &str) -> postgres::Client {
    postgres::Client::connect(
        &format!("host=127.0.0.1 port={port} user={USER} dbname={db} sslmode=disable"),
        postgres::NoTls,
    )
    .expect("connect to the test server")
}

/// A direct connection to the database of a state URL made by [`database`].
pub fn client(state_url: &str) -> postgres::Client {
    let u = url::Url::parse(state_url).unwrap();
    connect(u.port().unwrap(), u.path().trim_start_matches('/'))
}

fn bin_dir() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if dir.join("initdb").is_file() && dir.join("postgres").is_file() {
                return Some(dir);
            }
        }
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|b| b.join("initdb").is_file())
        .collect();
    versions.sort();
    versions.pop()
}

/// The uid and gid the server runs as: ours, or `nobody`'s when we are root.
fn identity() -> Option<(u32, u32)> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    let name = std::ffi::CString::new("nobody").unwrap();
    // SAFETY: a valid C string; the result is read at once, before any other getpw* call.
    let pw = unsafe { libc::getpwnam(name.as_ptr()) };
    assert!(
        !pw.is_null(),
        "running as root, and there is no user nobody to run PostgreSQL as"
    );
    // SAFETY: non-null, as checked.
    let pw = unsafe { &*pw };
    Some((pw.pw_uid, pw.pw_gid))
}

fn as_server_user(cmd: &mut Command, who: Option<(u32, u32)>) {
    use std::os::unix::process::CommandExt;
    if let Some((uid, gid)) = who {
        cmd.uid(uid).gid(gid);
    }
}

fn chown_all(path: &Path, who: Option<(u32, u32)>) {
    if let Some((uid, gid)) = who {
        std::os::unix::fs::chown(path, Some(uid), Some(gid)).expect("chown the server's directory");
    }
}

/// Removes data directories that earlier test processes left (their servers
/// died with them).
fn sweep(base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if let Some(pid) = name
            .strip_prefix("mdops-pg-test-")
            .and_then(|p| p.parse::<i32>().ok())
        {
            // SAFETY: kill with signal 0 only checks that the process exists.
            if unsafe { libc::kill(pid, 0) } != 0 {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
}

fn start() -> Result<Server, String> {
    let bin = bin_dir().ok_or("PostgreSQL's initdb and postgres were not found")?;
    let who = identity();
    let base = std::env::temp_dir();
    sweep(&base);
    let dir = base.join(format!("mdops-pg-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    chown_all(&dir, who);
    let data = dir.join("data");
    let mut initdb = Command::new(bin.join("initdb"));
    initdb
        .args([
            "-D",
            data.to_str().unwrap(),
            "-U",
            USER,
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
            "--locale=C",
        ])
        .current_dir(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    as_server_user(&mut initdb, who);
    let out = initdb
        .output()
        .map_err(|e| format!("cannot run initdb: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    // A port nobody listens on now (a rare race with another process is retried).
    for _ in 0..5 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        match launch(&bin, &dir, &data, port, who) {
            Ok(()) => return Ok(Server { port, _dir: dir }),
            Err(e) if e.contains("in use") => continue,
            Err(e) => return Err(e),
        }
    }
    Err("no free port for PostgreSQL".into())
}

/// Starts `postgres` from a thread that lives as long as the process, and
/// waits for its "ready to accept connections" line.
fn launch(
    bin: &Path,
    dir: &Path,
    data: &Path,
    port: u16,
    who: Option<(u32, u32)>,
) -> Result<(), String> {
    let (tx, rx) = std::sync::mpsc::channel::<Result<(), String>>();
    let mut cmd = Command::new(bin.join("postgres"));
    cmd.args([
        "-D",
        data.to_str().unwrap(),
        "-p",
        &port.to_string(),
        "-k",
        dir.to_str().unwrap(),
    ])
    .args([
        "-c",
        "listen_addresses=127.0.0.1",
        "-c",
        "fsync=off",
        "-c",
        "max_connections=200",
    ])
    .current_dir(dir)
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    as_server_user(&mut cmd, who);
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec here.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGQUIT) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    std::thread::Builder::new()
        .name("postgres".into())
        .spawn(move || {
            let mut child = match cmd.spawn() {
                Ok(c) => c,
                Err(e) => {
                    let _ = tx.send(Err(format!("cannot start postgres: {e}")));
                    return;
                }
            };
            let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
            let mut told = false;
            let mut seen = String::new();
            for line in stderr.lines() {
                let Ok(line) = line else { break };
                if !told {
                    if line.contains("ready to accept connections") {
                        told = true;
                        let _ = tx.send(Ok(()));
                    } else {
                        seen.push_str(&line);
                        seen.push('\n');
                    }
                }
            }
            if !told {
                let _ = tx.send(Err(format!("postgres exited before it was ready: {seen}")));
            }
            let _ = child.wait();
            // This thread must outlive the tests: the server dies with it.
            loop {
                std::thread::park();
            }
        })
        .map_err(|e| e.to_string())?;
    rx.recv_timeout(std::time::Duration::from_secs(60))
        .map_err(|_| "postgres did not become ready in 60 s".to_string())?
}
