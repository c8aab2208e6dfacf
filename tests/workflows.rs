//! The bundled workflows against the emulator: final server state, sink
//! contents, idempotence, and convergence after interruptions.

use crate::support::{assert_exit, json_result, Env, Output};
use mdops::sim::state::SimToken;

const ROT_SEED: &str = r#"
admin_token = "test-admin-token-0123456789"
[[accounts]]
username = "tenant_a"
tokens = [
  { name = "app", secret = "old-secret-a-000000000000000000", age = "100d", ttl = "365d" },
  { name = "ci", age = "5d" },
]
[[accounts]]
username = "tenant_b"
tokens = [{ name = "app", secret = "old-secret-b-000000000000000000", age = "200d", token_type = "read_scaling" }]
[[accounts]]
username = "other_c"
tokens = [{ name = "app", age = "300d" }]
"#;

fn live(env: &Env, account: &str) -> Vec<SimToken> {
    let mut t = env.org().users[account].tokens.clone();
    t.sort_by(|a, b| a.name.cmp(&b.name));
    t
}

fn names(env: &Env, account: &str) -> Vec<String> {
    live(env, account).into_iter().map(|t| t.name).collect()
}

fn secret_of(env: &Env, account: &str, name: &str) -> String {
    live(env, account)
        .into_iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no {name}"))
        .secret
}

fn run(env: &Env, script: &str, args: &[&str]) -> Output {
    let mut a = vec!["run", script];
    a.extend_from_slice(args);
    env.mdops().args(a).output()
}

/// Runs again and asserts that it changed nothing on the server.
fn assert_idempotent(env: &Env, script: &str, args: &[&str]) {
    let before = env.sim.writes().len();
    let out = run(env, script, args);
    assert_exit(&out, 0);
    assert_eq!(
        env.sim.writes().len(),
        before,
        "a second run made writes: {:?}",
        &env.sim.writes()[before..]
    );
}

#[test]
fn rotate_tokens_replaces_delivers_verifies_and_revokes() {
    let env = Env::with_seed(ROT_SEED);
    let sinks = tempfile::tempdir().unwrap();
    let dir = sinks.path().to_str().unwrap().to_string();
    let args = [
        "--arg",
        "accounts=tenant_*",
        "--arg",
        "prefix=app",
        "--arg",
        &format!("sink_dir={dir}"),
    ];
    let out = run(&env, "rotate-tokens", &args);
    assert_exit(&out, 0);
    assert!(
        out.stdout.contains("tenant_a  rotated  1       1"),
        "{out:?}"
    );
    assert_eq!(names(&env, "tenant_a"), ["app.g1", "ci"]);
    assert_eq!(names(&env, "tenant_b"), ["app.g1"]);
    assert_eq!(names(&env, "other_c"), ["app"], "not selected");
    let a = live(&env, "tenant_a")
        .into_iter()
        .find(|t| t.name == "app.g1")
        .unwrap();
    let b = live(&env, "tenant_b")
        .into_iter()
        .find(|t| t.name == "app.g1")
        .unwrap();
    assert_eq!(
        b.token_type,
        mdops::api::TokenType::ReadScaling,
        "same type as the old token"
    );
    let life = a.expires.unwrap() - a.created;
    assert_eq!(life.num_days(), 365, "same lifetime as the old token");
    assert_eq!(
        std::fs::read_to_string(sinks.path().join("tenant_a/app.token")).unwrap(),
        format!("{}\n", a.secret)
    );
    assert_eq!(
        std::fs::read_to_string(sinks.path().join("tenant_b/app.token")).unwrap(),
        format!("{}\n", b.secret)
    );
    // The delivered secret authenticates as its account.
    let ok = crate::support::http()
        .get(format!("{}/v1/users/tenant_a/tokens", env.sim.url()))
        .bearer_auth(&a.secret)
        .send()
        .unwrap();
    assert_eq!(ok.status().as_u16(), 200);
    assert!(env
        .org()
        .revoked
        .contains_key("old-secret-a-000000000000000000"));
    assert_idempotent(&env, "rotate-tokens", &args);
}

#[test]
fn rotate_tokens_dry_run_plans_without_writing() {
    let env = Env::with_seed(ROT_SEED);
    let sinks = tempfile::tempdir().unwrap();
    let out = run(
        &env,
        "rotate-tokens",
        &[
            "--dry-run",
            "--arg",
            "accounts=tenant_a",
            "--arg",
            "prefix=app",
            "--arg",
            &format!("sink_dir={}", sinks.path().display()),
        ],
    );
    assert_exit(&out, 0);
    assert!(
        out.stdout
            .contains("[dry-run] create token tenant_a: read_write token \"app.g1\", ttl 365d"),
        "{out:?}"
    );
    assert!(
        out.stdout.contains("[dry-run] deliver secret file:"),
        "{out:?}"
    );
    assert!(
        out.stdout.contains("[dry-run] revoke token tenant_a/"),
        "{out:?}"
    );
    assert!(env.sim.writes().is_empty());
    assert!(std::fs::read_dir(sinks.path()).unwrap().next().is_none());
}

#[test]
fn rotate_tokens_keeps_the_old_token_for_the_grace_period() {
    let env = Env::with_seed(ROT_SEED);
    let sinks = tempfile::tempdir().unwrap();
    let args = [
        "--arg",
        "accounts=tenant_a",
        "--arg",
        "prefix=app",
        "--arg",
        "grace=1h",
        "--arg",
        &format!("sink_dir={}", sinks.path().display()),
    ];
    let out = run(&env, "rotate-tokens", &args);
    assert_exit(&out, 0);
    assert_eq!(names(&env, "tenant_a"), ["app", "app.g1", "ci"]);
    assert_idempotent(&env, "rotate-tokens", &args);
    verified_earlier(&env, 7200);
    let out = run(&env, "rotate-tokens", &args);
    assert_exit(&out, 0);
    assert!(out.stdout.contains("tenant_a  cleaned"), "{out:?}");
    assert_eq!(names(&env, "tenant_a"), ["app.g1", "ci"]);
    assert_idempotent(&env, "rotate-tokens", &args);
}

#[test]
fn rotate_tokens_env_file_and_command_sinks() {
    let env = Env::with_seed(ROT_SEED);
    let dir = tempfile::tempdir().unwrap();
    let env_file = dir.path().join("app.env");
    std::fs::write(
        &env_file,
        "KEEP=me\nMOTHERDUCK_TOKEN_TENANT_A=old-secret-a-000000000000000000\n",
    )
    .unwrap();
    let out = run(
        &env,
        "rotate-tokens",
        &[
            "--arg",
            "accounts=tenant_a",
            "--arg",
            "prefix=app",
            "--arg",
            "sink=env-file",
            "--arg",
            &format!("env_file={}", env_file.display()),
        ],
    );
    assert_exit(&out, 0);
    let secret = secret_of(&env, "tenant_a", "app.g1");
    assert_eq!(
        std::fs::read_to_string(&env_file).unwrap(),
        format!("KEEP=me\nMOTHERDUCK_TOKEN_TENANT_A={secret}\n")
    );
    let out = run(
        &env,
        "rotate-tokens",
        &[
            "--arg",
            "accounts=tenant_b",
            "--arg",
            "sink=command",
            "--arg",
            &format!(
                "sink_command=cat > {}/{{account}}.from-cmd",
                dir.path().display()
            ),
        ],
    );
    assert_exit(&out, 0);
    let secret = secret_of(&env, "tenant_b", "app.g1");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("tenant_b.from-cmd")).unwrap(),
        format!("{secret}\n")
    );
}

/// After any interruption, one more run leaves each account with exactly one
/// verified, delivered token and nothing else of its rotation.
fn assert_converged(env: &Env, sinks: &std::path::Path) {
    let tokens: Vec<SimToken> = live(env, "tenant_a")
        .into_iter()
        .filter(|t| t.name.starts_with("app"))
        .collect();
    assert_eq!(
        tokens.len(),
        1,
        "exactly one app token: {:?}",
        tokens.iter().map(|t| &t.name).collect::<Vec<_>>()
    );
    let current = &tokens[0];
    assert!(current.name.starts_with("app.g"), "{}", current.name);
    assert_eq!(
        std::fs::read_to_string(sinks.join("tenant_a/app.token")).unwrap(),
        format!("{}\n", current.secret),
        "the sink holds the live token"
    );
    let out = env
        .mdops()
        .args(["journal", "--account", "tenant_a", "--output", "json"])
        .output();
    let rows: Vec<serde_json::Value> = serde_json::from_value(json_result(&out)).unwrap();
    for row in rows {
        let live = row["token_id"] == current.id.as_str();
        assert_eq!(row["revoked_at"].is_null(), live, "journal row {row}");
        if live {
            assert!(row["delivered_at"].is_string() && row["verified_at"].is_string());
        }
    }
    assert!(
        env.org()
            .revoked
            .contains_key("old-secret-a-000000000000000000"),
        "the old token is revoked"
    );
}

#[test]
fn rotation_after_a_failing_sink_keeps_the_old_token_then_converges() {
    let env = Env::with_seed(ROT_SEED);
    let sinks = tempfile::tempdir().unwrap();
    let out = run(
        &env,
        "rotate-tokens",
        &[
            "--arg",
            "accounts=tenant_a",
            "--arg",
            "prefix=app",
            "--arg",
            "sink=command",
            "--arg",
            "sink_command=cat >/dev/null; echo vault is sealed >&2; exit 3",
        ],
    );
    assert_exit(&out, 4);
    assert!(
        out.stdout.contains(
            "delivery failed: sink command `cat >/dev/null; echo vault is sealed >&2; exit 3` failed with exit code 3: vault is sealed"
        ),
        "{out:?}"
    );
    assert_eq!(
        names(&env, "tenant_a"),
        ["app", "ci"],
        "new token revoked, old one kept"
    );
    let args = [
        "--arg",
        "accounts=tenant_a",
        "--arg",
        "prefix=app",
        "--arg",
        &format!("sink_dir={}", sinks.path().display()),
    ];
    let out = run(&env, "rotate-tokens", &args);
    assert_exit(&out, 0);
    assert_converged(&env, sinks.path());
    assert_idempotent(&env, "rotate-tokens", &args);
}

#[test]
fn rotation_after_a_failing_verify_restores_the_sink_then_converges() {
    let env = Env::with_seed(ROT_SEED);
    let sinks = tempfile::tempdir().unwrap();
    std::fs::create_dir(sinks.path().join("tenant_a")).unwrap();
    let file = sinks.path().join("tenant_a/app.token");
    std::fs::write(&file, "old-secret-a-000000000000000000\n").unwrap();
    let base = [
        "--arg",
        "accounts=tenant_a",
        "--arg",
        "prefix=app",
        "--arg",
        &format!("sink_dir={}", sinks.path().display()),
    ];
    let mut failing = base.to_vec();
    failing.extend(["--arg", "verify_command=test \"$MOTHERDUCK_TOKEN\" = nope"]);
    let out = run(&env, "rotate-tokens", &failing);
    assert_exit(&out, 4);
    assert!(
        out.stdout.contains("verify command failed (exit 1)"),
        "{out:?}"
    );
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "old-secret-a-000000000000000000\n",
        "the sink was put back"
    );
    assert_eq!(names(&env, "tenant_a"), ["app", "ci"]);
    let mut passing = base.to_vec();
    passing.extend(["--arg", "verify_command=test -n \"$MOTHERDUCK_TOKEN\""]);
    let out = run(&env, "rotate-tokens", &passing);
    assert_exit(&out, 0);
    assert_converged(&env, sinks.path());
    assert_idempotent(&env, "rotate-tokens", &passing);
}

#[test]
fn rotation_killed_after_delivery_converges_without_double_rotation() {
    let env = Env::with_seed(ROT_SEED);
    let sinks = tempfile::tempdir().unwrap();
    let base = [
        "--arg",
        "accounts=tenant_a",
        "--arg",
        "prefix=app",
        "--arg",
        &format!("sink_dir={}", sinks.path().display()),
    ];
    let mut killing = base.to_vec();
    // The deploy step kills mdops itself: delivered, never verified.
    killing.extend(["--arg", "deploy_command=kill -9 $PPID"]);
    let out = run(&env, "rotate-tokens", &killing);
    assert_eq!(out.code, -1, "killed by a signal: {out:?}");
    assert_eq!(
        names(&env, "tenant_a"),
        ["app", "app.g1", "ci"],
        "an unverified attempt is left behind"
    );
    let out = run(&env, "rotate-tokens", &base);
    assert_exit(&out, 0);
    assert_converged(&env, sinks.path());
    assert_eq!(
        names(&env, "tenant_a"),
        ["app.g2", "ci"],
        "a fresh token, not the half-done one"
    );
    assert_idempotent(&env, "rotate-tokens", &base);
}

#[test]
fn rotation_killed_before_delivery_and_after_verify_converges() {
    let env = Env::with_seed(ROT_SEED);
    let sinks = tempfile::tempdir().unwrap();
    let base = [
        "--arg",
        "accounts=tenant_a",
        "--arg",
        "prefix=app",
        "--arg",
        &format!("sink_dir={}", sinks.path().display()),
    ];
    // Killed while delivering: minted and journaled, never delivered.
    let out = run(
        &env,
        "rotate-tokens",
        &[
            "--arg",
            "accounts=tenant_a",
            "--arg",
            "prefix=app",
            "--arg",
            "sink=command",
            "--arg",
            "sink_command=kill -9 $PPID",
        ],
    );
    assert_eq!(out.code, -1);
    let out = run(&env, "rotate-tokens", &base);
    assert_exit(&out, 0);
    assert_converged(&env, sinks.path());
    // Killed after verifying, before revoking: the new token is verified and the
    // old one still live, which is exactly the state a grace period leaves. The
    // next run (once the grace is over) revokes the old token and mints nothing.
    let env = Env::with_seed(ROT_SEED);
    let sinks = tempfile::tempdir().unwrap();
    let graced = [
        "--arg",
        "accounts=tenant_a",
        "--arg",
        "prefix=app",
        "--arg",
        "grace=1h",
        "--arg",
        &format!("sink_dir={}", sinks.path().display()),
    ];
    let out = run(&env, "rotate-tokens", &graced);
    assert_exit(&out, 0);
    verified_earlier(&env, 7200);
    let out = run(&env, "rotate-tokens", &graced);
    assert_exit(&out, 0);
    assert_eq!(
        names(&env, "tenant_a"),
        ["app.g1", "ci"],
        "the old token revoked, no second rotation"
    );
    assert_converged(&env, sinks.path());
}

const CLEAN_SEED: &str = r#"
admin_token = "test-admin-token-0123456789"
[[accounts]]
username = "svc_one"
tokens = [
  { name = "ancient", age = "500d" },
  { name = "old-expiring", age = "400d", ttl = "365d" },
  { name = "fresh", age = "1d", ttl = "30d" },
  { name = "ci-forever", age = "10d" },
]
[[accounts]]
username = "svc_two"
tokens = [{ name = "only", age = "800d" }]
"#;

#[test]
fn cleanup_tokens_by_age_keeps_the_newest() {
    let env = Env::with_seed(CLEAN_SEED);
    let out = run(
        &env,
        "cleanup-tokens",
        &[
            "--arg",
            "accounts=all",
            "--arg",
            "older_than=365d",
            "--dry-run",
        ],
    );
    assert_exit(&out, 0);
    assert!(
        out.stdout.contains("[dry-run] revoke token svc_one/"),
        "{out:?}"
    );
    assert!(env.sim.writes().is_empty());
    let out = run(
        &env,
        "cleanup-tokens",
        &["--arg", "accounts=all", "--arg", "older_than=365d"],
    );
    assert_exit(&out, 0);
    // old-expiring is 400 days old but expired at 365: the API no longer lists it.
    assert_eq!(
        names(&env, "svc_one")
            .into_iter()
            .filter(|n| n != "old-expiring")
            .collect::<Vec<_>>(),
        ["ci-forever", "fresh"]
    );
    assert_eq!(
        names(&env, "svc_two"),
        ["only"],
        "an account's newest token is kept"
    );
    assert_idempotent(
        &env,
        "cleanup-tokens",
        &["--arg", "accounts=all", "--arg", "older_than=365d"],
    );
    let out = run(
        &env,
        "cleanup-tokens",
        &[
            "--arg",
            "older_than=365d",
            "--arg",
            "include_newest=true",
            "--arg",
            "accounts=svc_two",
        ],
    );
    assert_exit(&out, 0);
    assert!(names(&env, "svc_two").is_empty());
}

#[test]
fn cleanup_tokens_never_expiring_by_name() {
    let env = Env::with_seed(CLEAN_SEED);
    let out = run(
        &env,
        "cleanup-tokens",
        &[
            "--arg",
            "never_expiring=true",
            "--arg",
            "name=ci-*",
            "--arg",
            "accounts=svc_one",
        ],
    );
    assert_exit(&out, 0);
    assert!(!names(&env, "svc_one").contains(&"ci-forever".to_string()));
    assert!(
        names(&env, "svc_one").contains(&"ancient".to_string()),
        "the name pattern limits it"
    );
    let before = env.sim.requests().len();
    let out = run(&env, "cleanup-tokens", &["--arg", "accounts=svc_one"]);
    assert_exit(&out, 2);
    assert!(out.stderr.contains("give a policy"), "{out:?}");
    assert_eq!(
        env.sim.requests().len(),
        before,
        "refused before any request"
    );
}

#[test]
fn provision_account_is_idempotent() {
    let env = Env::with_seed(CLEAN_SEED);
    let sinks = tempfile::tempdir().unwrap();
    let args = [
        "--arg",
        "account=tenant_new",
        "--arg",
        "owner=data-team",
        "--arg",
        "purpose=embedding",
        "--arg",
        "tags=tenant,eu",
        "--arg",
        "rs_size=pulse",
        "--arg",
        "flock=1",
        "--arg",
        "ttl=90d",
        "--arg",
        &format!("sink_dir={}", sinks.path().display()),
    ];
    let out = run(&env, "provision-account", &args);
    assert_exit(&out, 0);
    assert!(out.stdout.contains("created    true\n"), "{out:?}");
    assert!(out.stdout.contains("token      minted\n"), "{out:?}");
    let org = env.org();
    let user = &org.users["tenant_new"];
    assert_eq!(
        user.config.read_scaling.instance_size,
        mdops::api::InstanceSize::Pulse
    );
    assert_eq!(user.config.read_scaling.flock_size, Some(1));
    assert_eq!(user.config.read_scaling.cooldown_seconds, None);
    assert_eq!(user.tokens.len(), 1);
    assert_eq!(user.tokens[0].name, "app.g1");
    assert_eq!(
        std::fs::read_to_string(sinks.path().join("tenant_new/app.token")).unwrap(),
        format!("{}\n", user.tokens[0].secret)
    );
    drop(org);
    let out = env
        .mdops()
        .args(["inventory", "list", "--output", "json"])
        .output();
    let rows: Vec<serde_json::Value> = serde_json::from_value(json_result(&out)).unwrap();
    assert_eq!(rows[0]["owner"], "data-team");
    assert_eq!(rows[0]["tags"], serde_json::json!(["tenant", "eu"]));
    assert_idempotent(&env, "provision-account", &args);
}

#[test]
fn offboard_account_quarantines_then_deletes() {
    let env = Env::with_seed(CLEAN_SEED);
    let args = ["--arg", "account=svc_one", "--arg", "grace=1h"];
    let out = run(&env, "offboard-account", &args);
    assert_exit(&out, 0);
    assert!(out.stdout.contains("phase         quarantined"), "{out:?}");
    {
        let org = env.org();
        let u = &org.users["svc_one"];
        // Only the token that had already expired (and so is not listed) remains.
        assert_eq!(
            u.tokens.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
            ["old-expiring"]
        );
        assert_eq!(
            u.config.read_write.instance_size,
            mdops::api::InstanceSize::Pulse
        );
        assert_eq!(u.config.read_scaling.flock_size, Some(0));
    }
    assert_idempotent(&env, "offboard-account", &args);
    quarantined_long_ago(&env);
    let out = run(&env, "offboard-account", &args);
    assert_exit(&out, 0);
    assert!(out.stdout.contains("run again with --yes"), "{out:?}");
    assert!(env.org().users.contains_key("svc_one"));
    let mut yes = args.to_vec();
    yes.push("--yes");
    let out = run(&env, "offboard-account", &yes);
    assert_exit(&out, 0);
    assert!(out.stdout.contains("phase    deleted"), "{out:?}");
    assert!(!env.org().users.contains_key("svc_one"));
    let out = env.mdops().args(["inventory", "list"]).output();
    assert_eq!(out.stdout, "(none)\n");
}

/// Moves every quarantine two hours back, past a grace of an hour.
fn quarantined_long_ago(env: &Env) {
    shift_state(
        env,
        "UPDATE inventory SET extra = json_set(extra, '$.quarantined_at',
           strftime('%Y-%m-%dT%H:%M:%SZ', json_extract(extra, '$.quarantined_at'), '-7200 seconds'))
         WHERE json_extract(extra, '$.quarantined_at') IS NOT NULL",
    );
}

/// A token minted after the quarantine (by hand, or by another tool) means
/// the account is in use: the deletion waits for a new grace period.
#[test]
fn offboarding_an_account_used_since_its_quarantine_starts_over() {
    let env = Env::with_seed(CLEAN_SEED);
    let args = ["--arg", "account=svc_one", "--arg", "grace=1h", "--yes"];
    let out = run(&env, "offboard-account", &args);
    assert_exit(&out, 0);
    assert!(out.stdout.contains("phase         quarantined"), "{out:?}");
    quarantined_long_ago(&env);
    let admin = mdops::sim::auth::Principal::Admin;
    env.org()
        .create_token(&admin, "svc_one", &serde_json::json!({"name": "by-hand"}))
        .unwrap();
    let out = run(&env, "offboard-account", &args);
    assert_exit(&out, 0);
    assert!(out.stdout.contains("phase         quarantined"), "{out:?}");
    assert!(
        out.stdout.contains(
            "found since the quarantine: a token (revoked now); the grace period starts again"
        ),
        "{out:?}"
    );
    assert!(
        env.org().users.contains_key("svc_one"),
        "deleted while in use"
    );
    assert!(!env.token_names("svc_one").contains(&"by-hand".to_string()));
    // Left alone for the new grace period, it is deleted.
    let out = run(&env, "offboard-account", &args);
    assert!(out.stdout.contains("wait"), "{out:?}");
    quarantined_long_ago(&env);
    let out = run(&env, "offboard-account", &args);
    assert_exit(&out, 0);
    assert!(out.stdout.contains("phase    deleted"), "{out:?}");
    assert!(!env.org().users.contains_key("svc_one"));
}

/// A bulk change leaves an account being offboarded alone: `all` does not
/// choose it (naming it does), so its quarantine runs its course. Ducklings
/// grown since the quarantine start it over, and the offboarding says so.
#[test]
fn bulk_workflows_leave_a_quarantined_account_alone() {
    let env = Env::with_seed(CLEAN_SEED);
    let args = ["--arg", "account=svc_one", "--arg", "grace=1h", "--yes"];
    assert_exit(&run(&env, "offboard-account", &args), 0);
    let size = |env: &Env, who: &str| env.org().users[who].config.read_write.instance_size;
    let grow = |accounts: &str| {
        run(
            &env,
            "set-ducklings",
            &["--arg", accounts, "--arg", "rw_size=jumbo"],
        )
    };
    let out = grow("accounts=all");
    assert_exit(&out, 0);
    assert!(
        out.stderr
            .contains("leave out accounts being offboarded (quarantined): svc_one; name one"),
        "{out:?}"
    );
    assert_eq!(size(&env, "svc_one"), mdops::api::InstanceSize::Pulse);
    assert_eq!(size(&env, "svc_two"), mdops::api::InstanceSize::Jumbo);
    // A pattern that does not reach it says nothing of it.
    let out = grow("accounts=svc_t*");
    assert_exit(&out, 0);
    assert!(!out.stderr.contains("offboarded"), "{out:?}");
    // A report still reads it, by pattern too.
    let out = run(&env, "audit-report", &["--arg", "accounts=svc_*"]);
    assert_exit(&out, 0);
    assert!(out.stdout.contains("svc_one "), "{out:?}");
    // Named, it is acted on, and no warning says otherwise.
    let out = grow("accounts=svc_one,svc_*");
    assert_exit(&out, 0);
    assert!(!out.stderr.contains("offboarded"), "{out:?}");
    assert_eq!(size(&env, "svc_one"), mdops::api::InstanceSize::Jumbo);
    quarantined_long_ago(&env);
    let out = run(&env, "offboard-account", &args);
    assert_exit(&out, 0);
    assert!(
        out.stdout.contains(
            "found since the quarantine: larger Ducklings (shrunk now: read_write.instance_size: jumbo → pulse"
        ),
        "{out:?}"
    );
    assert!(env.org().users.contains_key("svc_one"));
    assert_eq!(size(&env, "svc_one"), mdops::api::InstanceSize::Pulse);
    // Anything but a time in quarantined_at is no quarantine, for the
    // selection and for the offboarding alike.
    let odd = env.rhai(
        "odd.rhai",
        "inventory::add(\"svc_two\", #{quarantined_at: \"\"}); inventory::add(\"svc_one\", #{quarantined_at: false});",
    );
    odd.any_stdout().run();
    let out = run(
        &env,
        "set-ducklings",
        &["--arg", "accounts=all", "--arg", "rw_size=standard"],
    );
    assert_exit(&out, 0);
    assert!(!out.stderr.contains("offboarded"), "{out:?}");
    let out = run(&env, "offboard-account", &["--arg", "account=svc_two"]);
    assert_exit(&out, 0);
    assert!(out.stdout.contains("phase         quarantined"), "{out:?}");
    assert!(!out.stdout.contains("found since"), "{out:?}");
}

/// Provisioning a quarantined account calls the offboarding off.
#[test]
fn provisioning_a_quarantined_account_lifts_the_quarantine() {
    let env = Env::with_seed(CLEAN_SEED);
    let sinks = tempfile::tempdir().unwrap();
    let out = run(&env, "offboard-account", &["--arg", "account=svc_one"]);
    assert_exit(&out, 0);
    quarantined_long_ago(&env);
    let sink_dir = format!("sink_dir={}", sinks.path().display());
    let out = run(
        &env,
        "provision-account",
        &["--arg", "account=svc_one", "--arg", &sink_dir],
    );
    assert_exit(&out, 0);
    assert!(out.stdout.contains("quarantine  lifted\n"), "{out:?}");
    let out = env
        .mdops()
        .args(["inventory", "list", "--output", "json"])
        .output();
    assert_exit(&out, 0);
    let rows = json_result(&out);
    assert_eq!(rows[0]["username"], "svc_one", "{out:?}");
    assert_eq!(rows[0].get("quarantined_at"), None, "{out:?}");
    // An offboarding now begins at its first phase.
    let out = run(
        &env,
        "offboard-account",
        &["--arg", "account=svc_one", "--yes"],
    );
    assert_exit(&out, 0);
    assert!(out.stdout.contains("phase         quarantined"), "{out:?}");
    assert!(!out.stdout.contains("starts again"), "{out:?}");
    assert!(env.org().users.contains_key("svc_one"));
}

#[test]
fn audit_report_flags_breaches_and_speaks_csv_and_json() {
    let env = Env::with_seed(CLEAN_SEED);
    let out = env.mdops().args(["inventory", "add", "svc_one"]).output();
    assert_exit(&out, 0);
    let out = env.mdops().args(["inventory", "add", "long_gone"]).output();
    assert_exit(&out, 0);
    let out = run(&env, "audit-report", &[]);
    assert_exit(&out, 0);
    let out = run(
        &env,
        "audit-report",
        &["--arg", "max_age=365d", "--output", "csv"],
    );
    assert_exit(&out, 4);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines[0],
        "account,inventory,tokens,never_expire,expiring,oldest,read_write.cooldown_seconds,\
         read_write.instance_size,read_scaling.cooldown_seconds,read_scaling.flock_size,\
         read_scaling.instance_size,running,breach"
    );
    assert!(
        lines.contains(&"svc_one,tracked,3,2,0,43200000,60,standard,60,4,standard,0,token too old"),
        "{}",
        out.stdout
    );
    assert!(
        lines.contains(
            &"svc_two,untracked,1,1,0,69120000,60,standard,60,4,standard,0,token too old"
        ),
        "{}",
        out.stdout
    );
    assert!(
        lines.contains(&"long_gone,gone,0,0,0,,,,,,,0,"),
        "{}",
        out.stdout
    );
    let out = run(
        &env,
        "audit-report",
        &["--arg", "max_never_expiring=5", "--output", "json"],
    );
    assert_exit(&out, 0);
    let doc = json_result(&out);
    assert_eq!(doc.as_array().unwrap().len(), 3);
    assert!(env.sim.writes().is_empty(), "a report writes nothing");
}

#[test]
fn set_ducklings_applies_a_patch_to_many() {
    let env = Env::with_seed(CLEAN_SEED);
    let args = [
        "--arg",
        "accounts=svc_*",
        "--arg",
        "rs_size=jumbo",
        "--arg",
        "flock=2",
        "--arg",
        "rw_cooldown=10m",
    ];
    let out = run(&env, "set-ducklings", &args);
    assert_exit(&out, 0);
    assert!(out.stdout.contains("svc_one  read_write.cooldown_seconds: 60 → 600; read_scaling.instance_size: standard → jumbo; read_scaling.flock_size: 4 → 2"), "{out:?}");
    for u in ["svc_one", "svc_two"] {
        let c = env.org().users[u].config.clone();
        assert_eq!(
            c.read_scaling.instance_size,
            mdops::api::InstanceSize::Jumbo
        );
        assert_eq!(c.read_write.cooldown_seconds, Some(600));
    }
    assert_idempotent(&env, "set-ducklings", &args);
    let before = env.sim.requests().len();
    let out = run(
        &env,
        "set-ducklings",
        &["--arg", "accounts=svc_one", "--arg", "rs_size=huge"],
    );
    assert_exit(&out, 2);
    assert!(
        out.stderr.contains(
            "argument rs_size=\"huge\": \"huge\" is not a Duckling size (pulse, standard, jumbo, mega, giga)"
        ),
        "{out:?}"
    );
    assert_eq!(
        env.sim.requests().len(),
        before,
        "refused before any request"
    );
}

#[test]
fn reconcile_inventory_adopts_and_flags() {
    let env = Env::with_seed(CLEAN_SEED);
    env.mdops()
        .args(["inventory", "add", "ghost_acct"])
        .output();
    let out = run(&env, "reconcile-inventory", &[]);
    assert_exit(&out, 4);
    assert_eq!(out.stdout, "account     state\n----------  ---------\nghost_acct  gone\nsvc_one     untracked\nsvc_two     untracked\n");
    let out = run(
        &env,
        "reconcile-inventory",
        &[
            "--arg",
            "adopt=true",
            "--arg",
            "forget_gone=true",
            "--arg",
            "accounts=all",
        ],
    );
    assert_exit(&out, 0);
    assert_eq!(out.stdout, "account     state\n----------  --------------\nghost_acct  removed (gone)\nsvc_one     adopted\nsvc_two     adopted\n");
    let out = run(&env, "reconcile-inventory", &[]);
    assert_exit(&out, 0);
    assert!(env.sim.writes().is_empty(), "the server is only read");
}

/// Edits this install's state as if time had passed (grace periods are
/// counted on this machine's clock from times the state records): a test
/// need not sleep, nor race a short grace period. Some row must change.
fn shift_state(env: &Env, sql: &str) {
    let db = rusqlite::Connection::open(env.home.path().join("state.db")).unwrap();
    assert!(
        db.execute(sql, []).unwrap() > 0,
        "nothing recorded to move: {sql}"
    );
}

/// As if `secs` had passed since each token was verified.
fn verified_earlier(env: &Env, secs: u32) {
    shift_state(
        env,
        &format!(
            "UPDATE token_journal SET verified_at = strftime('%Y-%m-%dT%H:%M:%fZ', verified_at, '-{secs} seconds') WHERE verified_at IS NOT NULL"
        ),
    );
}
