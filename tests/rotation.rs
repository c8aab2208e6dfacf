//! Rotation never leaves a workload's target holding a revoked token: not
//! after an interrupted run, not when the account gains a token group, not
//! when the sink arguments change between runs. And the accounts a run acts
//! on are exactly those its selector names.

use crate::support::{Env, Output};

const ADMIN: &str = "admin_token = \"test-admin-token-0123456789\"\n";

fn seed(accounts: &[(&str, &[(&str, &str)])]) -> String {
    let mut s = ADMIN.to_string();
    for (name, tokens) in accounts {
        s.push_str(&format!("[[accounts]]\nusername = \"{name}\"\ntokens = ["));
        for (t, age) in *tokens {
            s.push_str(&format!("{{ name = \"{t}\", age = \"{age}\" }},"));
        }
        s.push_str("]\n");
    }
    s
}

fn names(env: &Env, account: &str) -> Vec<String> {
    env.live(account).into_iter().map(|t| t.0).collect()
}

fn secret_of(env: &Env, account: &str, name: &str) -> String {
    env.live(account)
        .into_iter()
        .find(|t| t.0 == name)
        .unwrap_or_else(|| panic!("{account} has no live {name}"))
        .1
}

fn rotate(env: &Env, args: &[&str]) -> crate::support::Cmd {
    let mut a = vec!["run", "rotate-tokens"];
    for x in args {
        a.extend(["--arg", x]);
    }
    env.mdops().args(a)
}

/// A rotation killed outright while deploying: its successor was delivered
/// (the target holds it) but never verified.
fn killed_while_deploying(env: &Env, sink: &str) -> Output {
    rotate(
        env,
        &["accounts=tenant_a", sink, "deploy_command=kill -KILL $PPID"],
    )
    .output()
}

/// H1: the old token is gone by the time of the next run (it expired, or a
/// person revoked it). The delivered successor is all the workload has: the
/// next run must replace it with a verified one, never just revoke it.
#[test]
fn an_interrupted_rotation_whose_old_token_is_gone_is_finished_not_cleaned() {
    let env = Env::with_seed(&seed(&[("tenant_a", &[("app", "100d")])]));
    let dir = tempfile::tempdir().unwrap();
    let sink = format!("sink_dir={}", dir.path().display());
    let out = killed_while_deploying(&env, &sink);
    assert_eq!(out.code, -1, "killed: {out:?}");
    assert_eq!(names(&env, "tenant_a"), ["app", "app.g1"]);
    env.org()
        .users
        .get_mut("tenant_a")
        .unwrap()
        .tokens
        .retain(|t| t.name != "app");
    let out = rotate(&env, &["accounts=tenant_a", &sink])
        .stdout_has(&["tenant_a  rotated  1       1"])
        .any_stderr()
        .run();
    assert!(out.stderr.contains("1 item ok, 0 failed"), "{out:?}");
    assert_eq!(names(&env, "tenant_a"), ["app.g2"]);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("tenant_a/app.token")).unwrap(),
        format!("{}\n", secret_of(&env, "tenant_a", "app.g2")),
        "the target holds the live, verified successor"
    );
}

/// The same interruption with the old token still there and no longer due
/// (the operator raised older_than): the target holds an unverified token,
/// so the group is rotated to a verified one rather than that token revoked.
#[test]
fn a_delivered_attempt_is_only_ever_replaced_by_a_verified_successor() {
    let env = Env::with_seed(&seed(&[("tenant_a", &[("app", "100d")])]));
    let dir = tempfile::tempdir().unwrap();
    let sink = format!("sink_dir={}", dir.path().display());
    killed_while_deploying(&env, &sink);
    assert_eq!(names(&env, "tenant_a"), ["app", "app.g1"]);
    rotate(&env, &["accounts=tenant_a", &sink, "older_than=1000d"])
        .stdout_has(&["tenant_a  rotated"])
        .any_stderr()
        .run();
    assert_eq!(names(&env, "tenant_a"), ["app.g2"]);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("tenant_a/app.token")).unwrap(),
        format!("{}\n", secret_of(&env, "tenant_a", "app.g2"))
    );
    // Converged: the next run changes nothing.
    rotate(&env, &["accounts=tenant_a", &sink, "older_than=1000d"])
        .stdout_has(&["tenant_a  unchanged  0       0"])
        .stderr_has(&["1 item ok, 0 failed; 0 writes"])
        .run();
}

/// H2: the env key a group's token went to stays its key when the account
/// gains another token group, so the key the workload reads is the one
/// that gets the successor.
#[test]
fn an_env_key_stays_put_when_the_account_gains_a_token_group() {
    let env = Env::with_seed(&seed(&[("etl_pipeline", &[("airflow", "200d")])]));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("app.env");
    std::fs::write(&file, "").unwrap();
    let args = [
        "accounts=etl_pipeline",
        "sink=env-file",
        &format!("env_file={}", file.display()),
    ];
    // Tokens minted now are 200 days old by the time of the next run.
    env.org().clock_offset = chrono::Duration::days(-200);
    rotate(&env, &args).any_stdout().any_stderr().run();
    let g1 = secret_of(&env, "etl_pipeline", "airflow.g1");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        format!("MOTHERDUCK_TOKEN_ETL_PIPELINE={g1}\n")
    );
    // Someone adds a token of another name to the account.
    env.run(
        "add.rhai",
        "tokens::create(\"etl_pipeline\", \"debug\").token.reveal()",
        &[],
    );
    env.org().clock_offset = chrono::Duration::zero();
    rotate(&env, &args)
        .stdout_has(&["etl_pipeline  rotated  2       2"])
        .any_stderr()
        .run();
    let g2 = secret_of(&env, "etl_pipeline", "airflow.g2");
    let debug = secret_of(&env, "etl_pipeline", "debug.g1");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        format!(
            "MOTHERDUCK_TOKEN_ETL_PIPELINE={g2}\nMOTHERDUCK_TOKEN_ETL_PIPELINE_DEBUG={debug}\n"
        ),
        "airflow's key kept; the new group got its own"
    );
}

/// tenant_a with `app.g1`, which mdops minted and delivered to a sink
/// directory 200 days ago (due again now): the env, the directory, and the
/// `sink_dir=` argument.
fn rotated_long_ago() -> (Env, tempfile::TempDir, String) {
    let env = Env::with_seed(&seed(&[("tenant_a", &[("app", "200d")])]));
    let dir = tempfile::tempdir().unwrap();
    let sink = format!("sink_dir={}", dir.path().display());
    env.org().clock_offset = chrono::Duration::days(-200);
    rotate(&env, &["accounts=tenant_a", &sink])
        .any_stdout()
        .any_stderr()
        .run();
    env.org().clock_offset = chrono::Duration::zero();
    assert_eq!(names(&env, "tenant_a"), ["app.g1"]);
    (env, dir, sink)
}

/// A group whose current token mdops delivered to one place is refused a
/// successor somewhere else (the sink arguments changed), unless retarget.
#[test]
fn a_changed_target_is_refused_unless_retarget() {
    let (env, dir, sink) = rotated_long_ago();
    let before = names(&env, "tenant_a");
    let moved = ["accounts=tenant_a", &sink, "sink_file={account}.token"];
    let out = rotate(&env, &moved)
        .status(4)
        .stdout_has(&["tenant_a  failed", "its token is at file:", "retarget=true"])
        .any_stderr()
        .run();
    assert!(!out.stdout.contains("minted  1"));
    assert_eq!(names(&env, "tenant_a"), before, "nothing minted or revoked");
    assert!(!dir.path().join("tenant_a.token").exists());
    let mut retarget = moved.to_vec();
    retarget.push("retarget=true");
    rotate(&env, &retarget)
        .stdout_has(&["tenant_a  rotated"])
        .any_stderr()
        .run();
    assert_eq!(
        std::fs::read_to_string(dir.path().join("tenant_a.token")).unwrap(),
        format!("{}\n", secret_of(&env, "tenant_a", "app.g2"))
    );
}

/// M4, M5: lists and patterns mix; each account once whatever its case; a
/// pattern with no fixed character is refused (write all); one that matches
/// nothing is said; a selection of nothing is a usage error.
#[test]
fn selectors_select_exactly_what_they_name() {
    let env = Env::with_seed(&seed(&[
        ("tenant_acme", &[("app", "100d")]),
        ("tenant_globex", &[("app", "100d")]),
        ("etl_pipeline", &[("airflow", "100d")]),
    ]));
    let dir = tempfile::tempdir().unwrap();
    let sink = format!("sink_dir={}", dir.path().display());
    let rows = |out: &Output| -> Vec<String> {
        out.stdout
            .lines()
            .filter(|l| !l.starts_with("[dry-run]"))
            .skip(2)
            .map(|l| l.split_whitespace().next().unwrap().to_string())
            .collect()
    };
    let dry = |sel: &str| rotate(&env, &[&format!("accounts={sel}"), &sink]).args(["--dry-run"]);
    let out = dry("tenant_*,etl_pipeline").any_stdout().any_stderr().run();
    assert_eq!(rows(&out), ["tenant_acme", "tenant_globex", "etl_pipeline"]);
    let out = dry("etl_pipeline,ETL_PIPELINE")
        .any_stdout()
        .any_stderr()
        .run();
    assert_eq!(rows(&out), ["etl_pipeline"], "one account, once");
    let out = dry("tenant_[a]*").any_stdout().any_stderr().run();
    assert_eq!(rows(&out), ["tenant_acme"]);
    let out = dry("tenant_*,tenat_*")
        .any_stdout()
        .stderr_has(&["warning: the pattern \"tenat_*\" matches no account"])
        .run();
    assert_eq!(rows(&out), ["tenant_acme", "tenant_globex"]);
    for everything in ["*", "?*", "[!x]*", "[!]]*", "*[!]]", "[]-z]*"] {
        dry(everything)
            .status(2)
            .stderr_has(&["has no fixed character", "write all"])
            .run();
    }
    dry("tenat_*")
        .status(2)
        .stderr_has(&["\"tenat_*\" selects no account (3 known)"])
        .run();
    dry("ALL").any_stdout().any_stderr().run();
    // Every workflow selects the same way: reconcile-inventory too.
    env.mdops()
        .args([
            "run",
            "reconcile-inventory",
            "--arg",
            "accounts=tenat_*",
            "--arg",
            "adopt=true",
        ])
        .status(2)
        .stderr_has(&["\"tenat_*\" selects no account"])
        .run();
    let out = env
        .mdops()
        .args(["run", "reconcile-inventory", "--arg", "accounts=ALL"])
        .status(4)
        .any_stdout()
        .any_stderr()
        .run();
    assert!(
        out.stdout.contains("tenant_acme") && out.stdout.contains("etl_pipeline"),
        "{out:?}"
    );
    assert!(env.sim.writes().is_empty());
}

/// M1, L9: a target that cannot take a token safely is found before
/// anything is minted: an env file that sets the key twice (which one does
/// the workload read? which would a failed rotation put back?), a key set
/// from an expression, a symbolic link planted where a token file goes.
#[test]
fn unsafe_targets_are_refused_before_anything_is_minted() {
    let env = Env::with_seed(&seed(&[("etl_pipeline", &[("airflow", "200d")])]));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("app.env");
    let env_file = format!("env_file={}", file.display());
    for (content, why) in [
        (
            "MOTHERDUCK_TOKEN_ETL_PIPELINE=stale\nOTHER=1\nMOTHERDUCK_TOKEN_ETL_PIPELINE=live\n",
            "is set 2 times (lines 1, 3)",
        ),
        (
            "MOTHERDUCK_TOKEN_ETL_PIPELINE=\"${BASE}\"\n",
            "set from an expression",
        ),
        ("A=foo\\\n", "continue into the new entry"),
    ] {
        std::fs::write(&file, content).unwrap();
        rotate(&env, &["accounts=etl_pipeline", "sink=env-file", &env_file])
            .status(2)
            .stderr_has(&["refusing", why])
            .any_stdout()
            .run();
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            content,
            "untouched"
        );
    }
    let sinks = tempfile::tempdir().unwrap();
    std::fs::create_dir(sinks.path().join("etl_pipeline")).unwrap();
    let victim = dir.path().join("victim");
    std::fs::write(&victim, "precious\n").unwrap();
    std::os::unix::fs::symlink(&victim, sinks.path().join("etl_pipeline/airflow.token")).unwrap();
    rotate(
        &env,
        &[
            "accounts=etl_pipeline",
            &format!("sink_dir={}", sinks.path().display()),
        ],
    )
    .status(2)
    .stderr_has(&["is a symbolic link"])
    .any_stdout()
    .run();
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    assert!(
        env.sim.writes().is_empty(),
        "nothing minted: {:?}",
        env.sim.writes()
    );
}

/// L5, L6: a successor keeps an expiry when its predecessor had one (a
/// lifetime beyond the API's range is brought into it, never dropped), and
/// a group whose generation numbers are used up fails with a reason rather
/// than starting a new group beside the old one.
#[test]
fn successors_keep_an_expiry_and_generations_do_not_overflow() {
    let env = Env::with_seed(&format!(
        "{ADMIN}[[accounts]]\nusername = \"tenant_a\"\ntokens = [{{ name = \"long\", age = \"100d\", ttl = \"400d\" }}, {{ name = \"app.g999999999\", age = \"100d\" }}]\n"
    ));
    let dir = tempfile::tempdir().unwrap();
    let out = rotate(
        &env,
        &[
            "accounts=tenant_a",
            &format!("sink_dir={}", dir.path().display()),
        ],
    )
    .status(4)
    .stdout_has(&[
        "tenant_a  failed  1       1",
        "app: its generation numbers are used up: rename the token",
    ])
    .any_stderr()
    .run();
    let _ = out;
    let org = env.org();
    let successor = org.users["tenant_a"]
        .tokens
        .iter()
        .find(|t| t.name == "long.g1")
        .expect("long was rotated");
    let life = successor.expires.expect("it expires") - successor.created;
    assert_eq!(life.num_days(), 365, "the API's longest lifetime");
    assert!(org.users["tenant_a"]
        .tokens
        .iter()
        .any(|t| t.name == "app.g999999999"));
}

/// N1: a rotation that fails its check puts the old token back; the target's
/// record follows it, so the next run still delivers to the key the workload
/// reads (and the account's new token group gets its own key).
#[test]
fn after_a_rolled_back_rotation_the_env_key_stays_put() {
    let env = Env::with_seed(&seed(&[("etl_pipeline", &[("airflow", "200d")])]));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("app.env");
    std::fs::write(&file, "OTHER=1\n").unwrap();
    let flag = dir.path().join("ok");
    let args = |_: ()| {
        vec![
            "accounts=etl_pipeline".to_string(),
            "sink=env-file".to_string(),
            format!("env_file={}", file.display()),
            format!("verify_command=test -f {}", flag.display()),
        ]
    };
    let run = |status: i32| {
        let a = args(());
        let refs: Vec<&str> = a.iter().map(String::as_str).collect();
        rotate(&env, &refs)
            .status(status)
            .any_stdout()
            .any_stderr()
            .run()
    };
    std::fs::write(&flag, "").unwrap();
    env.org().clock_offset = chrono::Duration::days(-200);
    run(0);
    env.run(
        "add.rhai",
        "tokens::create(\"etl_pipeline\", \"debug\").token.reveal()",
        &[],
    );
    env.org().clock_offset = chrono::Duration::zero();
    // The check fails: both groups are rolled back.
    std::fs::remove_file(&flag).unwrap();
    let out = run(4);
    assert!(out.stdout.contains("verify command failed"), "{out:?}");
    let g1 = secret_of(&env, "etl_pipeline", "airflow.g1");
    assert!(
        std::fs::read_to_string(&file)
            .unwrap()
            .contains(&format!("MOTHERDUCK_TOKEN_ETL_PIPELINE={g1}\n")),
        "the old token is back under the app's key"
    );
    std::fs::write(&flag, "").unwrap();
    run(0);
    let text = std::fs::read_to_string(&file).unwrap();
    let airflow = env
        .live("etl_pipeline")
        .into_iter()
        .find(|t| t.0.starts_with("airflow.g") && t.0 != "airflow.g1")
        .expect("airflow rotated")
        .1;
    assert!(
        text.contains(&format!("MOTHERDUCK_TOKEN_ETL_PIPELINE={airflow}\n")),
        "the app's key holds the live successor: {text}"
    );
    assert!(
        !text.contains("MOTHERDUCK_TOKEN_ETL_PIPELINE_AIRFLOW"),
        "{text}"
    );
}

/// A journal that cannot say where a group's token was delivered blocks that
/// account: nothing is minted or revoked for it.
#[test]
fn an_account_whose_token_cannot_be_placed_is_blocked() {
    let (env, _dir, sink) = rotated_long_ago();
    let before = names(&env, "tenant_a");
    // Every read of the deliveries now fails (SQLite: integer overflow).
    let db = rusqlite::Connection::open(env.home.path().join("state.db")).unwrap();
    db.execute_batch(
        "ALTER TABLE deliveries RENAME TO deliveries_kept;
         CREATE VIEW deliveries AS SELECT * FROM deliveries_kept
         WHERE abs(-9223372036854775807 - 1) > 0;",
    )
    .unwrap();
    drop(db);
    rotate(&env, &["accounts=tenant_a", &sink])
        .status(4)
        .stdout_has(&["tenant_a  failed", "app: cannot tell where its token is"])
        .any_stderr()
        .run();
    assert_eq!(names(&env, "tenant_a"), before, "nothing minted or revoked");
}

/// N2: an attempt a stopped run delivered somewhere is where the workload
/// may read now; a successor bound elsewhere is refused unless retarget.
#[test]
fn a_delivered_attempt_pins_the_target_too() {
    let env = Env::with_seed(&seed(&[("tenant_a", &[("app", "100d")])]));
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    killed_while_deploying(&env, &format!("sink_dir={}", a.path().display()));
    assert_eq!(names(&env, "tenant_a"), ["app", "app.g1"]);
    rotate(
        &env,
        &[
            "accounts=tenant_a",
            &format!("sink_dir={}", b.path().display()),
        ],
    )
    .status(4)
    .stdout_has(&["tenant_a  failed", "its token is at file:", "retarget=true"])
    .any_stderr()
    .run();
    assert_eq!(
        names(&env, "tenant_a"),
        ["app", "app.g1"],
        "nothing revoked"
    );
    assert_eq!(
        std::fs::read_to_string(a.path().join("tenant_a/app.token")).unwrap(),
        format!("{}\n", secret_of(&env, "tenant_a", "app.g1"))
    );
}

/// A sink directory reached through a symlink names one target, before the
/// account's directory exists and after: the second rotation must not take
/// its own first delivery for a target that moved.
#[test]
fn a_sink_dir_behind_a_symlink_keeps_its_targets() {
    let env = Env::with_seed(&seed(&[("tenant_a", &[("app", "200d")])]));
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real");
    std::fs::create_dir(&real).unwrap();
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let sink = format!("sink_dir={}", link.display());
    env.org().clock_offset = chrono::Duration::days(-200);
    rotate(&env, &["accounts=tenant_a", &sink])
        .stdout_has(&["tenant_a  rotated"])
        .any_stderr()
        .run();
    env.org().clock_offset = chrono::Duration::zero();
    rotate(&env, &["accounts=tenant_a", &sink])
        .stdout_has(&["tenant_a  rotated"])
        .any_stderr()
        .run();
    assert_eq!(
        std::fs::read_to_string(real.join("tenant_a/app.token")).unwrap(),
        format!("{}\n", secret_of(&env, "tenant_a", "app.g2"))
    );
}
