//! Test harness: an emulator on 127.0.0.1 with a random port, a temporary
//! MDOPS_HOME, and a builder that runs the real `mdops` binary against them.

#![allow(dead_code)]

pub mod github;
pub mod hostile;
pub mod k8s;
pub mod moto;
pub mod oracle;
pub mod postgres;
pub mod raw;
pub mod vault;

use mdops::sim::{BackgroundSim, Behaviour, Seed};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub const ADMIN: &str = "test-admin-token-0123456789";

/// A small organization for tests: two service accounts, one human admin.
pub const SEED: &str = r#"
admin_token = "test-admin-token-0123456789"
dives = ["7b0c6a52-3f0e-4d4b-9a55-2f6a1c3e9d10"]

[[members]]
username = "ada"
roles = ["admin"]

[[accounts]]
username = "etl_pipeline"
ducklings.read_write = { instance_size = "jumbo", cooldown_seconds = 300 }
ducklings.read_scaling = { instance_size = "standard", flock_size = 2, cooldown_seconds = 120 }
active = [{ id = "rw", type = "read_write", status = "active" }]
tokens = [
  { name = "airflow", id = "11111111-1111-4111-8111-111111111111", secret = "etl-secret-airflow-000000000000", age = "400d" },
  { name = "dbt", id = "22222222-2222-4222-8222-222222222222", secret = "etl-secret-dbt-0000000000000000", age = "10d", ttl = "90d" },
  { name = "old", age = "100d", ttl = "30d" },
]

[[accounts]]
username = "bi_tool"
tokens = [{ name = "looker", secret = "bi-secret-looker-00000000000000", token_type = "read_scaling", age = "5d", ttl = "30d" }]
"#;

pub struct Env {
    pub sim: BackgroundSim,
    pub home: tempfile::TempDir,
    pub token_file: PathBuf,
}

pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// When a test ends well, every request mdops sent in it must be one the
/// API's published spec allows (see `oracle`).
impl Drop for Env {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            oracle::check(&self.sim.requests());
        }
    }
}

impl Env {
    pub fn new() -> Env {
        Env::with_seed(SEED)
    }

    pub fn with_seed(seed: &str) -> Env {
        Env::with(seed, Behaviour::default())
    }

    pub fn with(seed: &str, behaviour: Behaviour) -> Env {
        let seed: Seed = mdops::sim::seed::parse(seed, "toml").expect("test seed parses");
        let sim = BackgroundSim::start(&seed, behaviour).expect("emulator starts");
        let home = tempfile::tempdir().expect("temp dir");
        let token_file = home.path().join("admin.token");
        std::fs::write(&token_file, format!("{}\n", sim.admin_token())).unwrap();
        Env {
            sim,
            home,
            token_file,
        }
    }

    /// `mdops` pointed at this emulator with the admin token file.
    pub fn mdops(&self) -> Cmd {
        let mut c = Cmd::bare(self.home.path());
        c.cmd
            .env("MOTHERDUCK_API_BASE_URL", self.sim.url())
            .arg("--token-file")
            .arg(&self.token_file);
        c
    }

    /// The audit log's rows, as `mdops audit --output json ARGS` gives them.
    pub fn audit_rows(&self, args: &[&str]) -> Vec<serde_json::Value> {
        let out = self
            .mdops()
            .args(["audit", "--output", "json"])
            .args(args)
            .output();
        assert_exit(&out, 0);
        serde_json::from_value(json_result(&out)).unwrap()
    }

    /// Writes a script into the temp dir and returns its path.
    pub fn script(&self, name: &str, text: &str) -> PathBuf {
        let path = self.home.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Runs `text` as a script file named `name` with extra arguments.
    pub fn run(&self, name: &str, text: &str, extra: &[&str]) -> Output {
        let path = self.script(name, text);
        let mut cmd = self.mdops();
        cmd.cmd
            .current_dir(self.home.path())
            .arg("run")
            .arg(path.file_name().unwrap())
            .args(extra);
        cmd.output()
    }

    /// `mdops run NAME` for a script `text` written under `name`, as a [`Cmd`]
    /// to add arguments and expectations to.
    pub fn rhai(&self, name: &str, text: &str) -> Cmd {
        let path = self.script(name, text);
        let mut cmd = self.mdops();
        cmd.cmd
            .current_dir(self.home.path())
            .arg("run")
            .arg(path.file_name().unwrap());
        cmd
    }

    pub fn org(&self) -> std::sync::MutexGuard<'_, mdops::sim::Org> {
        self.sim.shared().org()
    }

    /// The live tokens of an account in the emulator: (name, secret), sorted.
    pub fn live(&self, account: &str) -> Vec<(String, String)> {
        let mut t: Vec<(String, String)> = self.org().users[account]
            .tokens
            .iter()
            .map(|t| (t.name.clone(), t.secret.clone()))
            .collect();
        t.sort();
        t
    }

    /// The live token names of an account in the emulator, sorted.
    pub fn token_names(&self, username: &str) -> Vec<String> {
        let org = self.org();
        let mut names: Vec<String> = org.users[&username.to_lowercase()]
            .tokens
            .iter()
            .map(|t| t.name.clone())
            .collect();
        names.sort();
        names
    }
}

pub struct Cmd {
    pub cmd: Command,
    expect: Expect,
}

/// What a run must show, checked all at once by [`Cmd::run`]: the exit status
/// (0 unless said), stdout and stderr (empty unless said). A mismatch prints
/// every difference together with the whole output.
#[derive(Default)]
struct Expect {
    status: i32,
    stdout: Text,
    stderr: Text,
}

/// How a stream must look.
#[derive(Default)]
pub enum Text {
    /// Nothing at all.
    #[default]
    Empty,
    /// Exactly this.
    Is(String),
    /// Each of these fragments, in this order.
    Has(Vec<String>),
    /// Anything: the test looks at it itself.
    Any,
}

impl Text {
    fn check(&self, actual: &str) -> Result<(), String> {
        match self {
            Text::Empty if actual.is_empty() => Ok(()),
            Text::Empty => Err("should be empty".into()),
            Text::Is(want) if want == actual => Ok(()),
            Text::Is(want) => Err(format!("should be exactly:\n{want}")),
            Text::Has(parts) => {
                let mut rest = actual;
                for part in parts {
                    match rest.find(part.as_str()) {
                        Some(i) => rest = &rest[i + part.len()..],
                        None => return Err(format!("lacks (in order): {part:?}")),
                    }
                }
                Ok(())
            }
            Text::Any => Ok(()),
        }
    }
}

impl Cmd {
    /// The binary with a clean environment: no token variables, a private home.
    pub fn bare(home: &Path) -> Cmd {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mdops"));
        for var in [
            "MOTHERDUCK_ADMIN_TOKEN",
            "MOTHERDUCK_TOKEN",
            "motherduck_token",
            "MOTHERDUCK_API_BASE_URL",
            "MDOPS_PROFILE",
            "MDOPS_LOG",
            "MDOPS_STATE_URL",
            "PGPASSWORD",
            "PGPASSFILE",
            "PGUSER",
            "VAULT_ADDR",
            "VAULT_TOKEN",
            "VAULT_NAMESPACE",
            "VAULT_CACERT",
            "GITHUB_TOKEN",
            "GITHUB_API_URL",
            "MDOPS_K8S_SERVER",
            "MDOPS_K8S_TOKEN_FILE",
            "MDOPS_K8S_CA_FILE",
            "KUBERNETES_SERVICE_HOST",
            "KUBERNETES_SERVICE_PORT",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "AWS_PROFILE",
            "AWS_REGION",
            "AWS_DEFAULT_REGION",
            "AWS_ENDPOINT_URL",
            "AWS_ENDPOINT_URL_SECRETS_MANAGER",
            "AWS_SHARED_CREDENTIALS_FILE",
            "AWS_CONFIG_FILE",
        ] {
            cmd.env_remove(var);
        }
        cmd.env("MDOPS_HOME", home)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        Cmd {
            cmd,
            expect: Expect::default(),
        }
    }

    /// The exit status `run` expects (0 unless set).
    pub fn status(mut self, code: i32) -> Self {
        self.expect.status = code;
        self
    }

    /// Exactly this on stdout.
    pub fn stdout(mut self, text: &str) -> Self {
        self.expect.stdout = Text::Is(text.to_string());
        self
    }

    /// Exactly this on stderr.
    pub fn stderr(mut self, text: &str) -> Self {
        self.expect.stderr = Text::Is(text.to_string());
        self
    }

    /// These fragments on stdout, in order.
    pub fn stdout_has(mut self, parts: &[&str]) -> Self {
        self.expect.stdout = Text::Has(parts.iter().map(|p| p.to_string()).collect());
        self
    }

    /// These fragments on stderr, in order.
    pub fn stderr_has(mut self, parts: &[&str]) -> Self {
        self.expect.stderr = Text::Has(parts.iter().map(|p| p.to_string()).collect());
        self
    }

    /// Stdout is the test's own business (it inspects the returned output).
    pub fn any_stdout(mut self) -> Self {
        self.expect.stdout = Text::Any;
        self
    }

    /// Stderr is the test's own business (it inspects the returned output).
    pub fn any_stderr(mut self) -> Self {
        self.expect.stderr = Text::Any;
        self
    }

    /// Runs and checks status, stdout and stderr together; returns the output
    /// for further checks (the server's state is the test's to assert).
    #[track_caller]
    pub fn run(self) -> Output {
        let mut cmd = self;
        let want = std::mem::take(&mut cmd.expect);
        let out = cmd.output();
        let mut wrong = Vec::new();
        if out.code != want.status {
            wrong.push(format!(
                "exit status {} should be {}",
                out.code, want.status
            ));
        }
        if let Err(e) = want.stdout.check(&out.stdout) {
            wrong.push(format!("stdout {e}"));
        }
        if let Err(e) = want.stderr.check(&out.stderr) {
            wrong.push(format!("stderr {e}"));
        }
        assert!(wrong.is_empty(), "{}\n\n{out:?}", wrong.join("\n"));
        out
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.cmd.args(args);
        self
    }

    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.cmd.env(k, v);
        self
    }

    pub fn output(mut self) -> Output {
        let out = self.cmd.output().expect("mdops runs");
        Output {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// The `--output json` document on stdout, checked against
/// `docs/output.schema.json` (the published contract), and returned whole.
#[track_caller]
/// Serves `app` on 127.0.0.1 with a random port, from a thread of its own
/// (the test servers of secret stores); returns its base URL.
pub fn serve(app: axum::Router) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    format!("http://{}", rx.recv().unwrap())
}

pub fn json_doc(out: &Output) -> serde_json::Value {
    static SCHEMA: std::sync::OnceLock<jsonschema::Validator> = std::sync::OnceLock::new();
    let validator = SCHEMA.get_or_init(|| {
        let schema: serde_json::Value =
            serde_json::from_str(include_str!("../../docs/output.schema.json"))
                .expect("the output schema is JSON");
        jsonschema::options()
            .build(&schema)
            .expect("the output schema compiles")
    });
    let doc: serde_json::Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{out:?}"));
    let errors: Vec<String> = validator
        .iter_errors(&doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "the document breaks docs/output.schema.json:\n{}\n{out:?}",
        errors.join("\n")
    );
    assert_eq!(
        doc["ok"],
        out.code == 0,
        "`ok` agrees with the exit code:\n{out:?}"
    );
    if out.code != 0 {
        assert_eq!(doc["error"]["exit_code"], out.code, "{out:?}");
    }
    doc
}

/// The `result` of a `--output json` document (the document is checked).
#[track_caller]
pub fn json_result(out: &Output) -> serde_json::Value {
    json_doc(out)["result"].clone()
}

/// A plain HTTP client for talking to the emulator directly.
pub fn http() -> reqwest::blocking::Client {
    mdops::api::install_crypto_provider();
    reqwest::blocking::Client::new()
}

#[track_caller]
pub fn assert_exit(out: &Output, code: i32) {
    assert_eq!(out.code, code, "unexpected exit code:\n{out:?}");
}

/// Waits for `ready` (an event: a file appearing, the emulator's request log
/// growing) by polling it; fails the test after `timeout`.
#[track_caller]
pub fn wait_until(what: &str, timeout: std::time::Duration, ready: impl Fn() -> bool) {
    let until = std::time::Instant::now() + timeout;
    while !ready() {
        assert!(
            std::time::Instant::now() < until,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}
