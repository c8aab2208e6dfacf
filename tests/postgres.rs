//! State on PostgreSQL, for runners without a disk: two runners with separate
//! data directories share inventory, journal, audit and run locks through a
//! real server the harness starts (see `support::postgres`).

use crate::support::postgres::{self, database};
use crate::support::{json_result, wait_until, Cmd, Env, Output};
use mdops::sim::{Behaviour, Faults};
use std::path::Path;
use std::time::Duration;

const SEED: &str = r#"
admin_token = "test-admin-token-0123456789"
[[accounts]]
username = "tenant_a"
tokens = [{ name = "app", age = "100d" }]
[[accounts]]
username = "tenant_b"
tokens = [{ name = "app", age = "100d" }]
"#;

/// `mdops` as a second runner: its own data directory, the same emulator and
/// the same state database.
fn runner(env: &Env, home: &Path, state: &str) -> Cmd {
    let mut c = Cmd::bare(home);
    c.cmd
        .env("MOTHERDUCK_API_BASE_URL", env.sim.url())
        .env("MDOPS_STATE_URL", state)
        .arg("--token-file")
        .arg(&env.token_file);
    c
}

/// Nothing of the state is kept in a data directory when it lives on a server.
fn assert_no_local_state(home: &Path) {
    let local: Vec<String> = std::fs::read_dir(home)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with("state") || n == "journal.key" || n == "locks" || n == "runs")
        .collect();
    assert!(local.is_empty(), "{}: {local:?}", home.display());
}

/// A run on a runner of `url` that does `before`, then signals (the file
/// `ready`) and waits until the file `go` exists, then does `after`; a
/// script's `{sink}` is a path it may deliver to. Returns once it waits.
struct Paused {
    child: std::process::Child,
    go: std::path::PathBuf,
    sink: std::path::PathBuf,
    _work: tempfile::TempDir,
}

/// `mdops run SCRIPT` on a runner with data directory `home`, its output piped.
fn spawn_run(env: &Env, home: &Path, url: &str, script: &Path) -> std::process::Child {
    let mut c = runner(env, home, url);
    c.cmd
        .args(["run", script.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    c.cmd.spawn().unwrap()
}

/// A second run (data directory `home`) that mints `app.g2` for tenant_a
/// and delivers it to `path`.
fn spawn_second(env: &Env, home: &Path, url: &str, path: &Path) -> std::process::Child {
    let script = env.script(
        "second.rhai",
        &format!(
            r#"let t = tokens::create("tenant_a", "app.g2");
secrets::to_file("{}", t.token);"#,
            path.display()
        ),
    );
    spawn_run(env, home, url, &script)
}

fn paused(env: &Env, url: &str, before: &str, after: &str) -> Paused {
    let work = tempfile::tempdir().unwrap();
    let (ready, go, sink) = (
        work.path().join("ready"),
        work.path().join("go"),
        work.path().join("t.token"),
    );
    let text = format!(
        "{before}\nsh(\"touch {}; while [ ! -e {} ]; do sleep 0.05; done\");\n{after}",
        ready.display(),
        go.display()
    )
    .replace("{sink}", &sink.display().to_string());
    let script = env.script("paused.rhai", &text);
    let child = spawn_run(env, env.home.path(), url, &script);
    wait_until("the run to pause", Duration::from_secs(30), || {
        ready.exists()
    });
    Paused {
        child,
        go,
        sink,
        _work: work,
    }
}

#[test]
fn two_runners_share_inventory_journal_and_audit() {
    let Some(url) = database("two_runners_share_inventory_journal_and_audit") else {
        return;
    };
    let env = Env::with_seed(SEED);
    let other = tempfile::tempdir().unwrap();
    let sinks = tempfile::tempdir().unwrap();
    let a = |args: &[&str]| runner(&env, env.home.path(), &url).args(args);
    // The second runner names the database with the flag, not the environment.
    let b = |args: &[&str]| {
        let mut c = Cmd::bare(other.path());
        c.cmd
            .env("MOTHERDUCK_API_BASE_URL", env.sim.url())
            .args(["--state", &url, "--token-file"])
            .arg(&env.token_file);
        c.args(args)
    };
    a(&[
        "inventory",
        "add",
        "tenant_a",
        "--owner",
        "ops",
        "--tag",
        "tenant",
    ])
    .any_stdout()
    .run();
    b(&["inventory", "list", "--output", "csv"])
        .stdout_has(&["username,owner", "tenant_a,ops"])
        .run();
    // One runner rotates; the other sees every token it minted and every write.
    let sink_dir = format!("sink_dir={}", sinks.path().display());
    a(&[
        "run",
        "rotate-tokens",
        "--arg",
        "accounts=tenant_a",
        "--arg",
        &sink_dir,
    ])
    .any_stdout()
    .any_stderr()
    .run();
    let journal = json_result(&b(&["journal", "--output", "json"]).any_stdout().run());
    let entries = journal.as_array().unwrap();
    assert_eq!(entries.len(), 1, "{journal}");
    assert_eq!(entries[0]["username"], "tenant_a");
    assert_eq!(entries[0]["name"], "app.g1");
    assert!(entries[0]["delivered_at"].is_string(), "{journal}");
    assert!(entries[0]["verified_at"].is_string(), "{journal}");
    b(&["audit", "--account", "TENANT_A"])
        .stdout_has(&[
            "create token",
            "tenant_a",
            "ok",
            "revoke token",
            "tenant_a/",
            "ok",
        ])
        .run();
    // The second runner's rotation knows the first one's tokens: tenant_a is
    // not due again, tenant_b is.
    let out = b(&[
        "run",
        "rotate-tokens",
        "--arg",
        "accounts=all",
        "--arg",
        &sink_dir,
    ])
    .any_stdout()
    .any_stderr()
    .run();
    assert!(out.stdout.contains("tenant_b"), "{out:?}");
    assert_eq!(
        env.live("tenant_a")
            .iter()
            .map(|t| t.0.as_str())
            .collect::<Vec<_>>(),
        ["app.g1"]
    );
    assert_eq!(
        env.live("tenant_b")
            .iter()
            .map(|t| t.0.as_str())
            .collect::<Vec<_>>(),
        ["app.g1"]
    );
    assert_eq!(
        json_result(&a(&["journal", "--output", "json"]).any_stdout().run())
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let place = url
        .trim_start_matches("postgresql://")
        .split('?')
        .next()
        .unwrap()
        .to_string();
    b(&["whoami"])
        .stdout_has(&[
            &format!("postgresql://{place} (from --state)"),
            "state_reachable",
            "true",
        ])
        .run();
    assert_no_local_state(env.home.path());
    assert_no_local_state(other.path());
}

#[test]
fn the_same_workflow_never_runs_on_two_runners_at_once() {
    let Some(url) = database("the_same_workflow_never_runs_on_two_runners_at_once") else {
        return;
    };
    let env = Env::with(
        SEED,
        Behaviour {
            latency: Duration::from_secs(3),
            ..Default::default()
        },
    );
    let other = tempfile::tempdir().unwrap();
    let script = env.script("slow.rhai", "tokens::list(\"tenant_a\").len()");
    let child = spawn_run(&env, env.home.path(), &url, &script);
    wait_until(
        "the first runner's request",
        Duration::from_secs(30),
        || env.sim.arrived() > 0,
    );
    let place = {
        let u = url::Url::parse(&url).unwrap();
        format!("127.0.0.1:{}{}", u.port().unwrap(), u.path())
    };
    let out = runner(&env, other.path(), &url)
        .args(["run", script.to_str().unwrap()])
        .status(5)
        .stderr_has(&[
            &format!(
                "error: another run of {} is in progress (pid={} on ",
                script.display(),
                child.id()
            ),
            &format!("its lock is in the state database {place}"),
        ])
        .run();
    assert_eq!(
        env.sim.arrived(),
        1,
        "the refused runner sent nothing: {out:?}"
    );
    let first = child.wait_with_output().unwrap();
    assert_eq!(first.status.code(), Some(0), "{first:?}");
    // Released with the first runner's connection: the second may run now.
    runner(&env, other.path(), &url)
        .args(["run", script.to_str().unwrap()])
        .stdout("1\n")
        .run();
}

/// Killed with SIGKILL mid-rotation (its token minted and delivered, its
/// deploy command running): its connection, and with it its locks, die with
/// it, and a runner on another machine finishes the work.
#[test]
fn a_runner_killed_mid_rotation_is_finished_by_another() {
    let Some(url) = database("a_runner_killed_mid_rotation_is_finished_by_another") else {
        return;
    };
    let env = Env::with_seed(SEED);
    let other = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let ready = work.path().join("deploying");
    let stop = work.path().join("stop");
    std::fs::create_dir(work.path().join("sinks")).unwrap();
    let sink_dir = format!("sink_dir={}", work.path().join("sinks").display());
    let deploy = format!(
        "deploy_command=touch {}; while [ ! -e {} ]; do sleep 0.1; done",
        ready.display(),
        stop.display()
    );
    let mut first = runner(&env, env.home.path(), &url);
    first
        .cmd
        .args([
            "run",
            "rotate-tokens",
            "--arg",
            "accounts=tenant_a",
            "--arg",
            &sink_dir,
            "--arg",
            &deploy,
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = first.cmd.spawn().unwrap();
    wait_until(
        "the deploy command to start",
        Duration::from_secs(30),
        || ready.exists(),
    );
    child.kill().unwrap();
    child.wait().unwrap();
    std::fs::write(&stop, "").unwrap();
    assert_eq!(
        env.live("tenant_a")
            .iter()
            .map(|t| t.0.as_str())
            .collect::<Vec<_>>(),
        ["app", "app.g1"],
        "killed between delivery and verification"
    );
    runner(&env, other.path(), &url)
        .args([
            "run",
            "rotate-tokens",
            "--arg",
            "accounts=tenant_a",
            "--arg",
            &sink_dir,
        ])
        .any_stdout()
        .any_stderr()
        .run();
    let tokens = env.live("tenant_a");
    assert_eq!(
        tokens.len(),
        1,
        "one successor, the old token revoked: {tokens:?}"
    );
    assert_ne!(tokens[0].0, "app");
    assert_eq!(
        std::fs::read_to_string(work.path().join("sinks/tenant_a/app.token")).unwrap(),
        format!("{}\n", tokens[0].1),
        "the live successor is the one delivered"
    );
    runner(&env, other.path(), &url)
        .args(["journal", "resolve", "--dry-run"])
        .stdout("(none)\n")
        .run();
    let journal = json_result(
        &runner(&env, other.path(), &url)
            .args(["journal", "--output", "json"])
            .any_stdout()
            .run(),
    );
    for e in journal.as_array().unwrap() {
        let live_one = e["name"] == tokens[0].0.as_str();
        assert_eq!(e["revoked_at"].is_string(), !live_one, "{e}");
        assert!(e["delivered_at"].is_string(), "nothing orphaned: {e}");
    }
}

/// Killed while its token create is in flight (the server minted it, the
/// answer never came): another runner's `journal resolve` finds the orphan
/// through the shared journal and revokes it.
#[test]
fn a_create_in_flight_on_a_killed_runner_is_resolved_by_another() {
    let Some(url) = database("a_create_in_flight_on_a_killed_runner_is_resolved_by_another") else {
        return;
    };
    let env = Env::with(
        SEED,
        Behaviour {
            faults: Faults {
                hang_rate: 1.0,
                hang: Duration::from_secs(60),
                scope: Some("POST /v1/users/*/tokens".into()),
                ..Default::default()
            },
            ..Default::default()
        },
    );
    let other = tempfile::tempdir().unwrap();
    let script = env.script(
        "m.rhai",
        "let t = tokens::create(\"tenant_a\", \"inflight\"); t.token.reveal();",
    );
    let mut first = runner(&env, env.home.path(), &url);
    first
        .cmd
        .args(["run", script.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = first.cmd.spawn().unwrap();
    wait_until("the server to mint", Duration::from_secs(30), || {
        env.sim
            .requests()
            .iter()
            .any(|r| r.method == "POST" && r.status == 200)
    });
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(
        env.live("tenant_a").len(),
        2,
        "the orphan is live until resolved"
    );
    runner(&env, other.path(), &url)
        .args(["journal", "resolve"])
        .stdout_has(&["tenant_a", "inflight", "revoked"])
        .run();
    assert_eq!(
        env.live("tenant_a")
            .iter()
            .map(|t| t.0.as_str())
            .collect::<Vec<_>>(),
        ["app"]
    );
    runner(&env, other.path(), &url)
        .args(["journal", "resolve"])
        .stdout("(none)\n")
        .run();
}

#[test]
fn migrations_apply_once_even_when_runners_start_together() {
    let Some(url) = database("migrations_apply_once_even_when_runners_start_together") else {
        return;
    };
    let homes: Vec<tempfile::TempDir> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let children: Vec<std::process::Child> = homes
        .iter()
        .map(|h| {
            let mut c = Cmd::bare(h.path());
            c.cmd
                .env("MDOPS_STATE_URL", &url)
                .args(["inventory", "list"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            c.cmd.spawn().unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout), "(none)\n");
    }
    let mut db = postgres::client(&url);
    let versions: Vec<i64> = db
        .query("SELECT version FROM mdops_schema", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(versions, [6]);
    let keys: i64 = db
        .query_one(
            "SELECT COUNT(*) FROM mdops_settings WHERE name = 'journal_key'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(keys, 1, "one journal key, shared");
    // Again: nothing to do.
    Cmd::bare(homes[0].path())
        .env("MDOPS_STATE_URL", &url)
        .args(["inventory", "list"])
        .stdout("(none)\n")
        .run();
    // A database migrated by a newer mdops is refused, not damaged.
    db.batch_execute("UPDATE mdops_schema SET version = 99")
        .unwrap();
    Cmd::bare(homes[0].path())
        .env("MDOPS_STATE_URL", &url)
        .args(["inventory", "list"])
        .status(2)
        .stderr_has(&["schema version 99, newer than this mdops understands (6); upgrade mdops"])
        .run();
}

#[test]
fn a_database_that_cannot_be_reached_is_exit_2_before_any_request() {
    let env = Env::with_seed(SEED);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let script = env.script("n.rhai", "tokens::list(\"tenant_a\").len()");
    let state = format!("postgres://ops@127.0.0.1:{port}/md_state?connect_timeout=5");
    let out = env
        .mdops()
        .env("MDOPS_STATE_URL", &state)
        .env("PGPASSWORD", "hunter2-do-not-show")
        .args(["run", script.to_str().unwrap()])
        .status(2)
        .stderr_has(&[&format!(
            "error: cannot connect to the state database 127.0.0.1:{port}/md_state: "
        )])
        .run();
    assert!(!out.stderr.contains("hunter2"), "{out:?}");
    assert_eq!(
        env.sim.arrived(),
        0,
        "no API call before the state is there"
    );
    // A password on the command line would be in the process list.
    env.mdops()
        .args([
            "--state",
            &format!("postgres://ops:hunter2@127.0.0.1:{port}/md_state"),
            "inventory",
            "list",
        ])
        .status(2)
        .stderr_has(&["--state must not carry a password"])
        .run();
    // A misspelt parameter is named, not ignored.
    env.mdops()
        .args([
            "--state",
            &format!("postgres://ops@127.0.0.1:{port}/md_state?sslmod=require"),
            "inventory",
            "list",
        ])
        .status(2)
        .stderr_has(&[
            "invalid state URL: unknown parameter \"sslmod\"",
            "(from --state)",
        ])
        .run();
    let out: Output = env
        .mdops()
        .env("MDOPS_STATE_URL", "mysql://127.0.0.1/x")
        .args(["whoami"])
        .status(2)
        .stderr_has(&[
            "it must start with postgres:// or postgresql://",
            "(from $MDOPS_STATE_URL)",
        ])
        .run();
    assert!(out.stdout.is_empty());
}

#[test]
fn state_migrates_into_postgres_and_back_and_again_changes_nothing() {
    let Some(url) = database("state_migrates_into_postgres_and_back_and_again_changes_nothing")
    else {
        return;
    };
    let env = Env::with_seed(SEED);
    let sinks = tempfile::tempdir().unwrap();
    let sink_dir = format!("sink_dir={}", sinks.path().display());
    // Local state first: an inventory, a rotation's journal and audit.
    env.mdops()
        .args(["inventory", "add", "tenant_a", "--owner", "ops"])
        .any_stdout()
        .run();
    env.mdops()
        .args([
            "run",
            "rotate-tokens",
            "--arg",
            "accounts=tenant_a",
            "--arg",
            &sink_dir,
        ])
        .any_stdout()
        .any_stderr()
        .run();
    let local_journal = json_result(
        &env.mdops()
            .args(["journal", "--output", "json"])
            .any_stdout()
            .run(),
    );
    let local_audit = json_result(
        &env.mdops()
            .args(["audit", "--output", "json"])
            .any_stdout()
            .run(),
    );
    let first = json_result(
        &env.mdops()
            .args(["state", "migrate", "--output", "json", "--to", &url])
            .any_stdout()
            .run(),
    );
    let added = &first["added"];
    // Each run keeps the API and admin token it worked with (only a run on
    // that organization settles it).
    let runs_api = |apis: Vec<Option<String>>| {
        assert!(
            !apis.is_empty()
                && apis
                    .iter()
                    .all(|a| a.as_deref() == Some(env.sim.url().as_str())),
            "{apis:?}"
        );
    };
    runs_api(
        postgres::client(&url)
            .query(
                "SELECT CASE WHEN admin IS NULL THEN NULL ELSE api END FROM runs",
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect(),
    );
    assert_eq!(added["inventory"], 1, "{first}");
    assert_eq!(added["token_journal"], 1, "{first}");
    assert_eq!(
        added["audit"],
        local_audit.as_array().unwrap().len(),
        "{first}"
    );
    let again = json_result(
        &env.mdops()
            .args(["state", "migrate", "--output", "json", "--to", &url])
            .any_stdout()
            .run(),
    );
    let total: u64 = again["added"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| *k != "read")
        .map(|(_, v)| v.as_u64().unwrap())
        .sum();
    assert_eq!(total, 0, "a second copy adds nothing: {again}");
    // The shared state answers as the local one did, fingerprints included
    // (the journal key moved with the journal).
    let other = tempfile::tempdir().unwrap();
    let on_server = |args: &[&str]| {
        runner(&env, other.path(), &url)
            .args(args)
            .any_stdout()
            .run()
    };
    assert_eq!(
        json_result(&on_server(&["journal", "--output", "json"])),
        local_journal
    );
    assert_eq!(
        json_result(&on_server(&["audit", "--output", "json"])),
        local_audit
    );
    // And back, into a data directory that had nothing.
    let back = tempfile::tempdir().unwrap();
    let out = runner(&env, back.path(), &url)
        .args(["state", "migrate", "--to", "local"])
        .stdout_has(&["table", "added", "inventory", "1", "token_journal", "1"])
        .stderr_has(&["copied 127.0.0.1:"])
        .run();
    assert!(out.stderr.contains("state.db"), "{out:?}");
    let db = rusqlite::Connection::open(back.path().join("state.db")).unwrap();
    let mut apis = db
        .prepare("SELECT CASE WHEN admin IS NULL THEN NULL ELSE api END FROM runs")
        .unwrap();
    runs_api(
        apis.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect(),
    );
    let mut local = Cmd::bare(back.path());
    local.cmd.args(["journal", "--output", "json"]);
    assert_eq!(json_result(&local.any_stdout().run()), local_journal);
}

/// The database goes away mid-run (here: its session is terminated, as a
/// failover or a restart would): the write after it is never sent, since its
/// record could not be kept and the run's locks went with the connection.
#[test]
fn a_connection_lost_mid_run_stops_writes() {
    let Some(url) = database("a_connection_lost_mid_run_stops_writes") else {
        return;
    };
    let env = Env::with_seed(
        r#"
admin_token = "test-admin-token-0123456789"
[[accounts]]
username = "tenant_a"
tokens = [{ name = "old", id = "11111111-1111-4111-8111-111111111111", age = "100d" }]
[[accounts]]
username = "tenant_b"
tokens = [{ name = "old", id = "22222222-2222-4222-8222-222222222222", age = "100d" }]
"#,
    );
    let work = tempfile::tempdir().unwrap();
    let ready = work.path().join("ready");
    let go = work.path().join("go");
    let script = env.script(
        "two.rhai",
        &format!(
            r#"tokens::revoke("tenant_a", "11111111-1111-4111-8111-111111111111");
sh("touch {}; while [ ! -e {} ]; do sleep 0.05; done");
tokens::revoke("tenant_b", "22222222-2222-4222-8222-222222222222");
print("not reached");"#,
            ready.display(),
            go.display()
        ),
    );
    let mut c = runner(&env, env.home.path(), &url);
    c.cmd
        .args(["run", script.to_str().unwrap(), "--yes"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = c.cmd.spawn().unwrap();
    wait_until("the first write", Duration::from_secs(30), || {
        ready.exists()
    });
    let mut db = postgres::client(&url);
    let ended: i64 = db
        .query_one(
            "SELECT COUNT(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
              WHERE datname = current_database() AND application_name = 'mdops') t",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(ended >= 1, "the runner's connections: {ended}");
    std::fs::write(&go, "").unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("the connection to the state database 127.0.0.1:")
            && stderr.contains("was lost"),
        "{stderr}"
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("not reached"));
    assert!(
        env.org().users["tenant_a"].tokens.is_empty(),
        "the first write happened"
    );
    assert_eq!(
        env.org().users["tenant_b"].tokens.len(),
        1,
        "the second was never sent"
    );
    assert!(
        !env.sim
            .requests()
            .iter()
            .any(|r| r.path.contains("tenant_b") && r.method == "DELETE"),
        "no request for tenant_b"
    );
}

/// Review findings, each with its test.
///
/// A runner that dies is cleaned up by the next *run* on any runner, not
/// only by `journal resolve`.
#[test]
fn the_next_run_on_another_runner_settles_what_a_dead_one_left() {
    let Some(url) = database("the_next_run_on_another_runner_settles_what_a_dead_one_left") else {
        return;
    };
    let env = Env::with_seed(SEED);
    let other = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let ready = work.path().join("ready");
    let script = env.script(
        "orphan.rhai",
        &format!(
            "tokens::create(\"tenant_a\", \"orphan1\"); sh(\"touch {}; sleep 30\");",
            ready.display()
        ),
    );
    let mut c = runner(&env, env.home.path(), &url);
    c.cmd
        .args(["run", script.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = c.cmd.spawn().unwrap();
    wait_until("the mint", Duration::from_secs(30), || ready.exists());
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(env.live("tenant_a").len(), 2);
    let out = runner(&env, other.path(), &url)
        .args(["run", "overview"])
        .any_stdout()
        .stderr_has(&["died before settling"])
        .run();
    assert_eq!(
        env.live("tenant_a")
            .iter()
            .map(|t| t.0.as_str())
            .collect::<Vec<_>>(),
        ["app"],
        "{out:?}"
    );
}

/// Only the connection holding the run's locks dies (its pool connections
/// live on): another runner may now take the run for dead and revoke its
/// token, so the run must not hand the secret over.
#[test]
fn a_run_whose_lock_connection_died_hands_no_secret_over() {
    let Some(url) = database("a_run_whose_lock_connection_died_hands_no_secret_over") else {
        return;
    };
    let env = Env::with_seed(SEED);
    let p = paused(
        &env,
        &url,
        r#"let t = tokens::create("tenant_a", "djn");
secrets::targets_of("x"); journal::get("x");"#,
        r#"secrets::to_file("{sink}", t.token);"#,
    );
    let mut db = postgres::client(&url);
    let ended: i64 = db
        .query_one(
            "SELECT COUNT(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_locks
              WHERE locktype = 'advisory' AND granted AND database =
                (SELECT oid FROM pg_database WHERE datname = current_database())) t",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(ended >= 1);
    std::fs::write(&p.go, "").unwrap();
    let out = p.child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("was lost"), "{stderr}");
    assert!(!p.sink.exists(), "the secret was not handed over");
}

/// One database is one organization's state: a runner of another profile is
/// refused instead of settling (and revoking) what is not its own.
#[test]
fn a_database_is_one_profiles_state() {
    let Some(url) = database("a_database_is_one_profiles_state") else {
        return;
    };
    let env = Env::with_seed(SEED);
    runner(&env, env.home.path(), &url)
        .args(["inventory", "list"])
        .stdout("(none)\n")
        .run();
    std::fs::write(
        env.home.path().join("config.toml"),
        "[profiles.other]\napi_url = \"http://127.0.0.1:9\"\n",
    )
    .unwrap();
    runner(&env, env.home.path(), &url)
        .args(["--profile", "other", "inventory", "list"])
        .status(2)
        .stderr_has(&[
            "keeps the state of profile \"default\", not \"other\"",
            "give each organization its own database",
        ])
        .run();
}

/// Commands a run starts never see the state database's credentials.
#[test]
fn commands_never_inherit_the_state_credentials() {
    let Some(url) = database("commands_never_inherit_the_state_credentials") else {
        return;
    };
    let env = Env::with_seed(SEED);
    let out = runner(&env, env.home.path(), &url)
        .env("PGPASSWORD", "pg-password-do-not-pass")
        .args(["eval", r#"sh("env").stdout"#])
        .any_stdout()
        .run();
    assert!(!out.stdout.contains("MDOPS_STATE_URL"), "{}", out.stdout);
    assert!(!out.stdout.contains("PGPASSWORD"), "{}", out.stdout);
}

/// A role that may read and write rows but not create anything can use a
/// database set up (migrated) by its owner.
#[test]
fn a_role_without_create_rights_uses_a_migrated_database() {
    let Some(url) = database("a_role_without_create_rights_uses_a_migrated_database") else {
        return;
    };
    let env = Env::with_seed(SEED);
    runner(&env, env.home.path(), &url)
        .args(["inventory", "list"])
        .stdout("(none)\n")
        .run();
    let mut db = postgres::client(&url);
    let role = format!("dml_{}", std::process::id());
    db.batch_execute(&format!(
        "DROP ROLE IF EXISTS {role}; CREATE ROLE {role} LOGIN;
         REVOKE CREATE ON SCHEMA public FROM PUBLIC;
         GRANT USAGE ON SCHEMA public TO {role};
         GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role};
         GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {role};"
    ))
    .unwrap();
    let limited = url.replacen(postgres::USER, &role, 1);
    runner(&env, env.home.path(), &limited)
        .args(["inventory", "add", "tenant_a", "--owner", "ops"])
        .any_stdout()
        .run();
    runner(&env, env.home.path(), &limited)
        .args(["inventory", "list", "--output", "csv"])
        .stdout_has(&["tenant_a,ops"])
        .run();
}

/// The same script kept at different paths (two machines) is one lock.
#[test]
fn the_same_script_at_another_path_is_the_same_lock() {
    let Some(url) = database("the_same_script_at_another_path_is_the_same_lock") else {
        return;
    };
    let env = Env::with(
        SEED,
        Behaviour {
            latency: Duration::from_secs(3),
            ..Default::default()
        },
    );
    let (m1, m2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let text = "tokens::list(\"tenant_a\").len()";
    let (s1, s2) = (m1.path().join("rot.rhai"), m2.path().join("rot.rhai"));
    std::fs::write(&s1, text).unwrap();
    std::fs::write(&s2, text).unwrap();
    let child = spawn_run(&env, m1.path(), &url, &s1);
    wait_until(
        "the first runner's request",
        Duration::from_secs(30),
        || env.sim.arrived() > 0,
    );
    runner(&env, m2.path(), &url)
        .args(["run", s2.to_str().unwrap()])
        .status(5)
        .stderr_has(&["another run of", "is in progress"])
        .run();
    assert_eq!(child.wait_with_output().unwrap().status.code(), Some(0));
}

/// `state migrate --to local` keeps the journal key every profile of a data
/// directory shares: it refuses when another profile's journal would lose it.
#[test]
fn migrating_back_never_orphans_another_profiles_journal() {
    let Some(url) = database("migrating_back_never_orphans_another_profiles_journal") else {
        return;
    };
    let env = Env::with_seed(SEED);
    let sinks = tempfile::tempdir().unwrap();
    let sink_dir = format!("sink_dir={}", sinks.path().display());
    // A journal on the server, under the server's key.
    runner(&env, env.home.path(), &url)
        .args([
            "run",
            "rotate-tokens",
            "--arg",
            "accounts=tenant_a",
            "--arg",
            &sink_dir,
        ])
        .any_stdout()
        .any_stderr()
        .run();
    // Another data directory whose profile p1 has a journal of its own.
    let back = tempfile::tempdir().unwrap();
    std::fs::write(back.path().join("config.toml"), "[profiles.p1]\n").unwrap();
    let mut p1 = Cmd::bare(back.path());
    p1.cmd
        .env("MOTHERDUCK_API_BASE_URL", env.sim.url())
        .args(["--profile", "p1", "--token-file"])
        .arg(&env.token_file);
    p1.args([
        "run",
        "rotate-tokens",
        "--arg",
        "accounts=tenant_b",
        "--arg",
        &sink_dir,
    ])
    .any_stdout()
    .any_stderr()
    .run();
    let key = std::fs::read_to_string(back.path().join("journal.key")).unwrap();
    runner(&env, back.path(), &url)
        .args(["state", "migrate", "--to", "local"])
        .status(1)
        .stderr_has(&["already holds a journal kept under another key"])
        .run();
    assert_eq!(
        std::fs::read_to_string(back.path().join("journal.key")).unwrap(),
        key
    );
}

/// Two runners at once delivering to one target: the second is refused
/// before it writes, the check made under a lock on the target.
#[test]
fn a_second_runner_may_not_write_over_a_running_runs_delivery() {
    let Some(url) = database("a_second_runner_may_not_write_over_a_running_runs_delivery") else {
        return;
    };
    let env = Env::with_seed(SEED);
    let p = paused(
        &env,
        &url,
        r#"let t = tokens::create("tenant_a", "app.g1");
secrets::to_file("{sink}", t.token);"#,
        "",
    );
    let sink = p.sink.clone();
    let held = std::fs::read_to_string(&sink).unwrap();
    let other = tempfile::tempdir().unwrap();
    // It must not wait on the live run either (it once deadlocked there).
    let second = std::sync::Mutex::new(spawn_second(&env, other.path(), &url, &sink));
    wait_until("the second runner to end", Duration::from_secs(60), || {
        second.lock().unwrap().try_wait().unwrap().is_some()
    });
    let out = second.into_inner().unwrap().wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("delivered by run"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&sink).unwrap(), held);
    std::fs::write(&p.go, "").unwrap();
    let done = p.child.wait_with_output().unwrap();
    assert_eq!(done.status.code(), Some(0), "{done:?}");
    let live: Vec<String> = env.live("tenant_a").into_iter().map(|t| t.0).collect();
    assert_eq!(live, ["app", "app.g1"]);
}

/// Under a server whose transactions default to one snapshot each, the
/// check still sees an announcement committed while it waited for the
/// target's lock: it reads at READ COMMITTED whatever the default.
#[test]
fn the_target_check_sees_what_committed_while_it_waited() {
    let Some(url) = database("the_target_check_sees_what_committed_while_it_waited") else {
        return;
    };
    let mut db = postgres::client(&url);
    let name: String = db
        .query_one("SELECT current_database()", &[])
        .unwrap()
        .get(0);
    db.batch_execute(&format!(
        "ALTER DATABASE \"{name}\" SET default_transaction_isolation = 'repeatable read'"
    ))
    .unwrap();
    let env = Env::with_seed(SEED);
    // The first run holds its token at one place and waits.
    let p = paused(
        &env,
        &url,
        r#"let t = tokens::create("tenant_a", "app.g1");
secrets::to_file("{sink}", t.token);"#,
        "",
    );
    let other = p.sink.with_file_name("other.token");
    let target = format!("file:{}", other.display());
    // Hold the other place's lock, so that the second run waits for it.
    let mut tx = db.transaction().unwrap();
    let key = mdops::store::pg::lock_key("target", &target);
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&key])
        .unwrap();
    let home = tempfile::tempdir().unwrap();
    let second = spawn_second(&env, home.path(), &url, &other);
    let watch = std::sync::Mutex::new(postgres::client(&url));
    wait_until(
        "the second run to wait for the lock",
        Duration::from_secs(30),
        || {
            let waiting: i64 = watch
                .lock()
                .unwrap()
                .query_one(
                    "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted
                      AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
                    &[],
                )
                .unwrap()
                .get(0);
            waiting > 0
        },
    );
    // Meanwhile the first run's token is announced for that place too.
    let moved = tx
        .execute(
            "UPDATE token_journal SET delivering_to = $1 WHERE delivering_to LIKE 'file:%t.token'",
            &[&target],
        )
        .unwrap();
    assert_eq!(moved, 1);
    tx.commit().unwrap();
    let out = second.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("delivered by run"), "{stderr}");
    assert!(!other.exists(), "nothing was written there");
    std::fs::write(&p.go, "").unwrap();
    assert_eq!(p.child.wait_with_output().unwrap().status.code(), Some(0));
}
