//! Workflows you can trust with production credentials: each way a run could
//! act wider than asked, lose a secret or hide a failure, tried as an
//! operator would, against the emulator.

use crate::support::{assert_exit, json_result, wait_until, Cmd, Env, Output};
use mdops::sim::{Behaviour, Faults};
use std::time::Duration;

const ADMIN: &str = "admin_token = \"test-admin-token-0123456789\"\n";

fn run(env: &Env, script: &str, args: &[&str]) -> Output {
    let mut a = vec!["run", script];
    a.extend_from_slice(args);
    env.mdops().args(a).output()
}

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

#[test]
fn a_misspelt_argument_is_refused_before_any_request() {
    let env = Env::with_seed(&seed(&[
        ("tenant_acme", &[("app", "40d"), ("app2", "1d")]),
        ("bi_dashboards", &[("x", "40d")]),
    ]));
    env.mdops()
        .args(["run", "cleanup-tokens", "--dry-run"])
        .args(["--arg", "acounts=tenant_acme", "--arg", "older_than=30d"])
        .status(2)
        .stderr(
            "error: invalid arguments for scripts/cleanup-tokens.rhai:\n  \
             unknown argument acounts; did you mean accounts?\n  \
             missing argument accounts: pass --arg accounts=... (accounts: which accounts: a list (a,b), a pattern (tenant_*), or all)\n  \
             = help: `mdops doc cleanup-tokens` lists its parameters\n",
        )
        .run();
    assert!(env.sim.requests().is_empty(), "not one request");
    // Spelled right, the dry run plans one account's revocation and says so.
    env.mdops()
        .args(["run", "cleanup-tokens", "--dry-run"])
        .args(["--arg", "accounts=tenant_acme", "--arg", "older_than=30d"])
        .stdout_has(&[
            "[dry-run] revoke token tenant_acme/",
            "tenant_acme  1        app\n",
        ])
        .stderr_has(&["scripts/cleanup-tokens.rhai: 1 item ok, 0 failed; 1 write planned, "])
        .run();
    assert!(env.sim.writes().is_empty());
}

#[test]
fn invalid_values_are_refused_up_front_and_all_at_once() {
    let env = Env::with_seed(&seed(&[("svc_one", &[("app", "100d")])]));
    let cases: &[(&str, &[&str], &str)] = &[
        ("rotate-tokens", &["accounts=all", "older_than=90x", "sink_dir=."], "argument older_than=\"90x\": not a duration: \"90x\": unknown unit 'x'"),
        ("cleanup-tokens", &["accounts=all", "older_than=-1d"], "argument older_than=\"-1d\": \"-1d\" is not a positive duration"),
        ("cleanup-tokens", &["accounts=all", "older_than=90"], "argument older_than=\"90\": \"90\" has no unit: write 90d for days"),
        ("cleanup-tokens", &["accounts=all", "older_than=6m"], "argument older_than=\"6m\": \"6m\" is ambiguous (6 minutes or 6 months?): write 6min for minutes, or days for months (as in 180d)"),
        ("cleanup-tokens", &["accounts=all", "older_than=6mo"], "argument older_than=\"6mo\": not a duration: \"6mo\": months have no fixed length; write days, as in \"180d\""),
        ("set-ducklings", &["accounts=all", "flock=100", "rw_cooldown=30s"], "argument rw_cooldown=\"30s\": 30s is below the minimum 1min\n  argument flock=\"100\": 100 is above the maximum 64"),
        ("provision-account", &["owner=ops"], "missing argument account: pass --arg account=..."),
        ("rotate-tokens", &["accounts=all", "sink_file={acount}.token", "sink_dir=."], "argument sink_file=\"{acount}.token\": {acount} is not a placeholder"),
        ("offboard-account", &["account=tenant_*"], "\"tenant_*\" is one account, not a pattern or a list"),
    ];
    for (script, args, want) in cases {
        let mut a = Vec::new();
        for x in *args {
            a.extend(["--arg", *x]);
        }
        env.mdops()
            .args(["run", script])
            .args(&a)
            .status(2)
            .stderr_has(&["error: invalid arguments", want])
            .run();
    }
    assert!(env.sim.requests().is_empty(), "nothing was read or written");
    // A script can say what was wrong with how it was called: exit 2 too.
    env.mdops()
        .args(["run", "cleanup-tokens", "--arg", "accounts=all"])
        .status(2)
        .stderr_has(&[
            "error: give a policy: --arg older_than=DURATION and/or --arg never_expiring=true\n",
        ])
        .run();
}

#[test]
fn write_workflows_need_accounts_written_out() {
    let env = Env::with_seed(&seed(&[("svc_one", &[("app", "100d")])]));
    for (script, extra) in [
        ("rotate-tokens", vec!["--arg", "sink_dir=."]),
        ("cleanup-tokens", vec!["--arg", "older_than=1d"]),
        ("set-ducklings", vec!["--arg", "flock=1"]),
        ("reconcile-inventory", vec!["--arg", "adopt=true"]),
    ] {
        env.mdops()
            .args(["run", script])
            .args(&extra)
            .status(2)
            .stderr_has(&["accounts", "--arg accounts=..."])
            .run();
    }
    assert!(env.sim.requests().is_empty());
    env.mdops()
        .args(["doc", "rotate-tokens"])
        .stdout_has(&[
            "Parameters (--arg NAME=VALUE):\n  accounts ",
            "accounts, required",
            "\n  older_than ",
            "duration = 90d",
        ])
        .run();
}

/// Two token groups of one account go to two files; both old tokens are
/// revoked only after their own successor was delivered and verified.
#[test]
fn an_account_with_two_due_tokens_gets_one_target_per_token() {
    let env = Env::with_seed(&seed(&[(
        "svc_ci",
        &[("ci-build", "80d"), ("ci-deploy", "80d")],
    )]));
    let sinks = tempfile::tempdir().unwrap();
    let dir = sinks.path().display().to_string();
    let args = [
        "--arg",
        "accounts=svc_ci",
        "--arg",
        "older_than=60d",
        "--arg",
    ];
    let out = run(
        &env,
        "rotate-tokens",
        &[&args[..], &[&format!("sink_dir={dir}")]].concat(),
    );
    assert_exit(&out, 0);
    assert!(
        out.stdout.contains("svc_ci   rotated  2       2"),
        "{out:?}"
    );
    let tokens = env.live("svc_ci");
    let names: Vec<&str> = tokens.iter().map(|t| t.0.as_str()).collect();
    assert_eq!(names, ["ci-build.g1", "ci-deploy.g1"]);
    for (name, secret) in &tokens {
        let base = name.trim_end_matches(".g1");
        assert_eq!(
            std::fs::read_to_string(sinks.path().join(format!("svc_ci/{base}.token"))).unwrap(),
            format!("{secret}\n"),
            "{base} has its own file holding its own live token"
        );
    }
    // A template without {name} would put both in one file: that account is
    // refused, nothing of it minted (its own token names are to blame, so the
    // other accounts go on).
    let env = Env::with_seed(&seed(&[
        ("svc_ci", &[("ci-build", "80d"), ("ci-deploy", "80d")]),
        ("svc_ok", &[("app", "80d")]),
    ]));
    let out = run(
        &env,
        "rotate-tokens",
        &[
            "--arg",
            "accounts=all",
            "--arg",
            "older_than=60d",
            "--arg",
            &format!("sink_dir={dir}"),
            "--arg",
            "sink_file={account}.token",
        ],
    );
    assert_exit(&out, 4);
    assert!(
        out.stdout
            .contains("svc_ci/ci-build and svc_ci/ci-deploy would both go to file:")
            && out.stdout.contains("put {name} in the sink's template"),
        "{out:?}"
    );
    assert_eq!(env.live("svc_ci").len(), 2, "nothing of svc_ci was touched");
    assert_eq!(
        env.live("svc_ok")[0].0,
        "app.g1",
        "the other account rotated"
    );
    // A template without {account} would put two accounts in one file: the
    // whole run is refused before anything is minted.
    let env = Env::with_seed(&seed(&[
        ("svc_a", &[("app", "80d")]),
        ("svc_b", &[("app", "80d")]),
    ]));
    let out = run(
        &env,
        "rotate-tokens",
        &[
            "--arg",
            "accounts=all",
            "--arg",
            "older_than=60d",
            "--arg",
            &format!("sink_dir={dir}"),
            "--arg",
            "sink_file={name}.token",
        ],
    );
    assert_exit(&out, 2);
    assert!(
        out.stderr
            .contains("refusing to mint anything: svc_a/app and svc_b/app would both go to file:")
            && out.stderr.contains("give each account its own target"),
        "{out:?}"
    );
    assert!(env.sim.writes().is_empty(), "nothing was minted");
}

/// Concurrent rotation into one env file loses nothing: every key ends up
/// holding its account's live token.
#[test]
fn forty_accounts_rotate_into_one_env_file() {
    let names: Vec<String> = (0..40).map(|i| format!("tenant_{i:02}")).collect();
    let accounts: Vec<(&str, &[(&str, &str)])> = names
        .iter()
        .map(|n| (n.as_str(), &[("app", "100d")][..]))
        .collect();
    let env = Env::with_seed(&seed(&accounts));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("app.env");
    std::fs::write(&file, "# managed by mdops\nKEEP=me\n").unwrap();
    let out = run(
        &env,
        "rotate-tokens",
        &[
            "--arg",
            "accounts=tenant_*",
            "--arg",
            "sink=env-file",
            "--arg",
            &format!("env_file={}", file.display()),
        ],
    );
    assert_exit(&out, 0);
    assert_eq!(
        out.stderr.lines().next().unwrap(),
        format!(
            "warning: {} is readable by every user (mode 644); the token in it is too",
            file.display()
        ),
        "said once, not forty times"
    );
    assert!(
        out.stderr
            .lines()
            .nth(1)
            .unwrap()
            .starts_with("scripts/rotate-tokens.rhai: 40 items ok, 0 failed;"),
        "{out:?}"
    );
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.starts_with("# managed by mdops\nKEEP=me\n"));
    assert_eq!(text.lines().count(), 42, "{text}");
    for n in &names {
        let (_, secret) = env.live(n).into_iter().find(|t| t.0 == "app.g1").unwrap();
        let key = format!("MOTHERDUCK_TOKEN_{}={secret}", n.to_uppercase());
        assert!(text.lines().any(|l| l == key), "{n} is missing or stale");
    }
}

/// A script that mints and does not deliver: the runtime revokes what it
/// left, says so, and the run ends with exit 4.
#[test]
fn a_script_that_drops_a_secret_gets_it_revoked() {
    let env = Env::new();
    let out = env.run(
        "drop.rhai",
        r#"
        let kept = tokens::create("bi_tool", "kept");
        kept.token.reveal();
        let released = tokens::create("bi_tool", "released");
        tokens::revoke("bi_tool", released.id);
        let dropped = tokens::create("bi_tool", "dropped");
        let caught = tokens::create("bi_tool", "caught");
        try { secrets::to_file("/nonexistent-dir/x", caught.token); } catch (e) { print(`sink failed: ${e.kind}`); }
        "done"
        "#,
        &[],
    );
    assert_exit(&out, 4);
    assert_eq!(out.stdout, "sink failed: sink\ndone\n");
    let names: Vec<String> = env.live("bi_tool").into_iter().map(|t| t.0).collect();
    assert_eq!(
        names,
        ["kept", "looker"],
        "only the revealed token is left live"
    );
    for name in ["dropped", "caught"] {
        assert!(
            out.stderr.contains(&format!("warning: token \"{name}\" (")),
            "{name} is reported: {out:?}"
        );
    }
    assert!(
        !out.stderr.contains("\"released\""),
        "released by the script: no warning"
    );
    assert!(
        out.stderr.contains("2 undelivered token(s) revoked"),
        "{out:?}"
    );
    let journal = env.mdops().args(["journal", "--output", "json"]).output();
    let rows: Vec<serde_json::Value> = serde_json::from_value(json_result(&journal)).unwrap();
    for row in rows {
        let settled = row["revoked_at"].is_string() || row["revealed_at"].is_string();
        assert!(settled, "every minted token is settled: {row}");
    }
}

const FRESH_CSV: &str = "username,owner\nfresh_one,data\nfresh_two,ops\n";

/// A dry run keeps an overlay of what it planned: reads after planned writes
/// see them, and input files can be read.
#[test]
fn a_dry_run_sees_its_own_plan() {
    let env = Env::new();
    let csv = env.script("new.csv", FRESH_CSV);
    let out = env.run(
        "plan.rhai",
        &format!(
            r#"
            let out = [];
            for row in read_csv("{}") {{
                let u = row.username;
                accounts::create(u);
                let t = tokens::create(u, #{{name: "app", ttl: "30d"}});
                out.push(`${{u}} exists=${{accounts::exists(u)}} tokens=${{tokens::list(u).map(|x| x.name)}} rs=${{ducklings::get(u).read_scaling.flock_size}}`);
                ducklings::update(u, #{{read_scaling: #{{flock_size: 1}}}});
                out.push(`${{u}} flock=${{ducklings::get(u).read_scaling.flock_size}} inventory=${{inventory::get(u) != ()}}`);
                tokens::revoke(u, t.id);
                out.push(`${{u}} after revoke=${{tokens::list(u).len()}}`);
            }}
            tokens::revoke("bi_tool", tokens::list("bi_tool")[0].id);
            out.push(`bi_tool=${{tokens::list("bi_tool").len()}}`);
            accounts::delete("etl_pipeline");
            out.push(`etl exists=${{accounts::exists("etl_pipeline")}} listed=${{accounts::list().contains("etl_pipeline")}}`);
            out
            "#,
            csv.display()
        ),
        &["--dry-run"],
    );
    assert_exit(&out, 0);
    let result: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| !l.starts_with("[dry-run]"))
        .collect();
    assert_eq!(
        result,
        [
            "fresh_one exists=true tokens=[\"app\"] rs=4",
            "fresh_one flock=1 inventory=true",
            "fresh_one after revoke=0",
            "fresh_two exists=true tokens=[\"app\"] rs=4",
            "fresh_two flock=1 inventory=true",
            "fresh_two after revoke=0",
            "bi_tool=0",
            "etl exists=false listed=false",
        ]
    );
    assert!(env.sim.writes().is_empty(), "a dry run writes nothing");
}

/// Every bundled workflow's dry run completes for an account that does not
/// exist yet: provisioning plans all of it; the others report it.
#[test]
fn every_bundled_dry_run_completes_for_a_new_account() {
    let env = Env::new();
    let dir = tempfile::tempdir().unwrap();
    let sink_dir = format!("sink_dir={}", dir.path().display());
    let out = run(
        &env,
        "provision-account",
        &[
            "--dry-run",
            "--arg",
            "account=brand_new",
            "--arg",
            "owner=ops",
            "--arg",
            "rs_size=pulse",
            "--arg",
            "flock=1",
            "--arg",
            &sink_dir,
        ],
    );
    assert_exit(&out, 0);
    let plan: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("[dry-run]"))
        .collect();
    assert_eq!(plan[0], "[dry-run] create account brand_new");
    assert_eq!(plan[1], "[dry-run] add to inventory brand_new");
    assert_eq!(
        plan[2],
        "[dry-run] set ducklings brand_new: read_scaling.instance_size: standard → pulse; read_scaling.flock_size: 4 → 1; read_scaling.cooldown_seconds: 60 → -"
    );
    assert_eq!(
        plan[3],
        "[dry-run] create token brand_new: read_write token \"app.g1\", no expiry"
    );
    assert!(plan[4].starts_with(&format!(
        "[dry-run] deliver secret file:{}/brand_new/app.token",
        dir.path().display()
    )));
    assert!(out.stdout.contains("token      minted\n"), "{out:?}");
    for (script, args) in [
        (
            "rotate-tokens",
            vec!["--arg", "accounts=brand_new", "--arg", &sink_dir],
        ),
        (
            "cleanup-tokens",
            vec!["--arg", "accounts=brand_new", "--arg", "older_than=1d"],
        ),
        (
            "set-ducklings",
            vec!["--arg", "accounts=brand_new", "--arg", "flock=1"],
        ),
        ("offboard-account", vec!["--arg", "account=brand_new"]),
        ("audit-report", vec!["--arg", "accounts=brand_new"]),
        (
            "reconcile-inventory",
            vec!["--arg", "accounts=brand_new", "--arg", "adopt=true"],
        ),
        ("overview", vec![]),
    ] {
        let mut a = vec!["--dry-run"];
        a.extend(args.iter().copied());
        let out = run(&env, script, &a);
        assert!(matches!(out.code, 0 | 4), "{script}: {out:?}");
        assert!(!out.stderr.contains("error:"), "{script}: {out:?}");
    }
    assert!(env.sim.writes().is_empty());
}

/// The summary counts what the table shows, and the exit code agrees.
#[test]
fn summary_table_and_exit_code_agree_and_quiet_is_quiet() {
    let env = Env::with_seed(&seed(&[
        ("svc_one", &[("app", "100d")]),
        ("svc_two", &[("app", "100d")]),
    ]));
    let out = run(
        &env,
        "set-ducklings",
        &[
            "--arg",
            "accounts=svc_one,ghost_acct,svc_two",
            "--arg",
            "flock=2",
        ],
    );
    assert_exit(&out, 4);
    assert!(out.stdout.contains("ghost_acct  -"), "{out:?}");
    assert!(out.stdout.contains("User ghost_acct not found"), "{out:?}");
    assert!(
        out.stderr
            .starts_with("scripts/set-ducklings.rhai: 2 items ok, 1 failed;"),
        "{out:?}"
    );
    // --quiet: nothing on stderr when all is well...
    let out = env
        .mdops()
        .args([
            "--quiet",
            "run",
            "set-ducklings",
            "--arg",
            "accounts=svc_*",
            "--arg",
            "flock=3",
        ])
        .output();
    assert_exit(&out, 0);
    assert_eq!(out.stderr, "");
    // ...and the summary when it is not.
    let out = env
        .mdops()
        .args([
            "-q",
            "run",
            "set-ducklings",
            "--arg",
            "accounts=svc_one,ghost_acct",
            "--arg",
            "flock=3",
        ])
        .output();
    assert_exit(&out, 4);
    assert!(out.stderr.contains("1 item ok, 1 failed"), "{out:?}");
}

/// --max-writes: a circuit breaker for cron.
#[test]
fn max_writes_stops_the_run_before_the_next_write() {
    let accounts: Vec<(String, [(&str, &str); 1])> = (0..5)
        .map(|i| (format!("tenant_{i}"), [("app", "100d")]))
        .collect();
    let refs: Vec<(&str, &[(&str, &str)])> =
        accounts.iter().map(|(n, t)| (n.as_str(), &t[..])).collect();
    let env = Env::with_seed(&seed(&refs));
    let dir = tempfile::tempdir().unwrap();
    let sink_dir = format!("sink_dir={}", dir.path().display());
    let out = env
        .mdops()
        .args([
            "--max-writes",
            "3",
            "--concurrency",
            "1",
            "run",
            "rotate-tokens",
            "--arg",
            "accounts=all",
            "--arg",
            &sink_dir,
        ])
        .output();
    assert_exit(&out, 4);
    assert_eq!(env.sim.writes().len(), 3, "three writes, not four");
    assert!(
        out.stderr
            .contains("; stopped before write 4 (--max-writes 3): nothing more was changed\n"),
        "{out:?}"
    );
    // What was changed before the stop is listed, for the operator to see.
    assert!(
        out.stderr
            .contains("writes made before the stop (see `mdops audit`):\n  create token tenant_0/")
            && out.stderr.contains("\n  revoke token tenant_0/")
            && out.stderr.contains("\n  create token tenant_1/"),
        "{out:?}"
    );
    // The rerun finishes the job (what was minted was delivered, not orphaned).
    let out = run(
        &env,
        "rotate-tokens",
        &["--arg", "accounts=all", "--arg", &sink_dir],
    );
    assert_exit(&out, 0);
    for (name, _) in &accounts {
        let names: Vec<String> = env.live(name).into_iter().map(|t| t.0).collect();
        assert_eq!(names, ["app.g1"], "{name}");
    }
}

fn spawn(env: &Env, args: &[&str]) -> std::process::Child {
    let mut c = env.mdops();
    c.cmd
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    c.cmd.spawn().unwrap()
}

fn signal(child: &std::process::Child, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

/// SIGTERM (what systemd, Kubernetes and CI send) is handled like Ctrl-C: the
/// deploy command is killed, the run cleans up and exits 143; a rerun converges.
#[cfg(unix)]
#[test]
fn sigterm_mid_rotation_then_a_rerun_converges() {
    let env = Env::with_seed(&seed(&[("tenant_a", &[("app", "100d")])]));
    let dir = tempfile::tempdir().unwrap();
    let ready = dir.path().join("deploying");
    let sink_dir = format!("sink_dir={}", dir.path().display());
    let deploy = format!("deploy_command=touch {}; sleep 30", ready.display());
    let child = spawn(
        &env,
        &[
            "run",
            "rotate-tokens",
            "--arg",
            "accounts=tenant_a",
            "--arg",
            &sink_dir,
            "--arg",
            &deploy,
        ],
    );
    wait_until(
        "the deploy command to start",
        Duration::from_secs(20),
        || ready.exists(),
    );
    let started = std::time::Instant::now();
    signal(&child, "-TERM");
    let out = child.wait_with_output().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the deploy command was killed"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(143), "{stderr}");
    assert!(
        stderr.starts_with("error: terminated (SIGTERM): stopped, then cleaned up\n"),
        "{stderr}"
    );
    assert!(
        stderr.contains("scripts/rotate-tokens.rhai: 0 items ok, 0 failed; 1 write, ")
            && stderr.ends_with("; terminated\n"),
        "the summary says what happened: {stderr}"
    );
    let names: Vec<String> = env.live("tenant_a").into_iter().map(|t| t.0).collect();
    assert_eq!(
        names,
        ["app", "app.g1"],
        "delivered, not verified, the old one kept"
    );
    let out = run(
        &env,
        "rotate-tokens",
        &["--arg", "accounts=tenant_a", "--arg", &sink_dir],
    );
    assert_exit(&out, 0);
    let tokens = env.live("tenant_a");
    assert_eq!(tokens.len(), 1);
    assert_eq!(tokens[0].0, "app.g2", "the half-done g1 was not trusted");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("tenant_a/app.token")).unwrap(),
        format!("{}\n", tokens[0].1)
    );
}

fn hanging_mints() -> Behaviour {
    Behaviour {
        faults: Faults {
            hang_rate: 1.0,
            hang: Duration::from_secs(60),
            scope: Some("POST /v1/users/*/tokens".into()),
            ..Default::default()
        },
        ..Default::default()
    }
}

fn minted_posts(env: &Env) -> usize {
    env.sim
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.status == 200)
        .count()
}

/// Two tokens of one run never go to one target, where the second would
/// overwrite the first: refused whether it comes after the first or at the
/// same time, from another worker.
#[test]
fn two_tokens_of_a_run_never_share_a_target() {
    let accounts = [
        "tenant_a", "tenant_b", "tenant_c", "tenant_d", "tenant_e", "tenant_f",
    ];
    let seeded: Vec<(&str, &[(&str, &str)])> = accounts
        .iter()
        .map(|a| (*a, &[("app", "10d")][..]))
        .collect();
    let env = Env::with_seed(&seed(&seeded));
    let file = env.home.path().join("shared.token");
    let script = format!(
        "parallel({accounts:?}, |a| {{ let t = tokens::create(a, \"new\"); secrets::to_file({file:?}, t.token); a }})"
    );
    let out = env
        .mdops()
        .args(["--concurrency", "6", "eval", &script])
        .output();
    assert_exit(&out, 4);
    assert!(out.stderr.contains("1 item ok, 5 failed"), "{out:?}");
    let held = std::fs::read_to_string(&file).unwrap();
    let live: Vec<String> = accounts
        .iter()
        .flat_map(|a| env.live(a))
        .filter(|t| t.0 == "new")
        .map(|t| t.1)
        .collect();
    assert_eq!(live, [held.trim()], "only the token the file holds is live");
}

/// A run that mints the token "inflight" for `tenant_a`, sent `sig` once the
/// server has minted it and before the answer comes; with what it printed.
fn signalled_while_minting(sig: &str) -> (Env, std::process::Output) {
    let env = Env::with(&seed(&[("tenant_a", &[("app", "10d")])]), hanging_mints());
    let script = env.script(
        "m.rhai",
        "let t = tokens::create(\"tenant_a\", \"inflight\"); t.token.reveal();",
    );
    let child = spawn(&env, &["run", script.to_str().unwrap()]);
    wait_until("the server to mint", Duration::from_secs(20), || {
        minted_posts(&env) == 1
    });
    signal(&child, sig);
    let out = child.wait_with_output().unwrap();
    (env, out)
}

/// Interrupted while the token create is in flight (the server minted it,
/// the answer never came): Ctrl-C and SIGTERM clean up in the same run.
#[cfg(unix)]
#[test]
fn interrupted_while_a_create_is_in_flight_revokes_what_it_minted() {
    for (sig, code) in [("-INT", 130), ("-TERM", 143)] {
        let (env, out) = signalled_while_minting(sig);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{stderr}");
        assert!(
            stderr.contains("warning: token \"inflight\" (")
                && stderr.contains(") of tenant_a was minted in this run"),
            "{stderr}"
        );
        let names: Vec<String> = env.live("tenant_a").into_iter().map(|t| t.0).collect();
        assert_eq!(
            names,
            ["app"],
            "the orphan was revoked before the run ended"
        );
    }
}

/// A run of `tenant_a` killed (SIGKILL) once the server has minted the token
/// "inflight" and before its answer came: the orphan is live on the server.
fn killed_while_minting() -> Env {
    signalled_while_minting("-KILL").0
}

/// Killed (SIGKILL: no clean-up at all) while the create is in flight: the
/// journal's attempt lets the next run, or `mdops journal resolve`, find and
/// revoke the orphan.
#[cfg(unix)]
#[test]
fn killed_while_a_create_is_in_flight_is_resolved_later() {
    for resolve_with in ["next run", "journal resolve"] {
        let env = killed_while_minting();
        assert_eq!(
            env.live("tenant_a").len(),
            2,
            "the orphan is live until resolved"
        );
        let dry = env
            .mdops()
            .args(["journal", "resolve", "--dry-run"])
            .output();
        assert_exit(&dry, 0);
        assert!(dry.stdout.contains("inflight"), "{dry:?}");
        let out = match resolve_with {
            "next run" => env.run("other.rhai", "tokens::list(\"tenant_a\").len()", &[]),
            _ => env.mdops().args(["journal", "resolve"]).output(),
        };
        assert_exit(&out, 0);
        let names: Vec<String> = env.live("tenant_a").into_iter().map(|t| t.0).collect();
        assert_eq!(names, ["app"], "{resolve_with}: {out:?}");
        if resolve_with == "next run" {
            assert_eq!(
                out.stdout, "1\n",
                "the run saw the world after the clean-up"
            );
            assert!(out.stderr.contains("died before settling"), "{out:?}");
        } else {
            assert!(out.stdout.contains("revoked"), "{out:?}");
        }
        let again = env.mdops().args(["journal", "resolve"]).output();
        assert_exit(&again, 0);
        assert_eq!(again.stdout, "(none)\n", "resolved once");
    }
}

/// A dead run's tokens live on the API it worked on. A run against another
/// API (another profile's URL, `--api-url`, the emulator) must not settle
/// them there: that server's "not found" would pass for a revocation, and the
/// token would live on where it was minted with nobody left to revoke it.
#[cfg(unix)]
#[test]
fn a_dead_run_is_settled_only_against_its_own_api() {
    let env = killed_while_minting();
    // The same state, against another emulator that has an account of that name.
    let other = Env::with_seed(&seed(&[("tenant_a", &[("app", "10d")])]));
    let elsewhere = |args: &[&str]| {
        let mut c = Cmd::bare(env.home.path());
        c.cmd
            .env("MOTHERDUCK_API_BASE_URL", other.sim.url())
            .arg("--token-file")
            .arg(&other.token_file)
            .args(args);
        c.output()
    };
    let script = env.script("n.rhai", "tokens::list(\"tenant_a\").len()");
    let out = elsewhere(&["run", script.to_str().unwrap()]);
    assert_exit(&out, 0);
    let other_org = format!(
        "on another organization (API {}) has tokens only that organization can settle: the next run there does",
        env.sim.url()
    );
    assert!(out.stderr.contains(&other_org), "{out:?}");
    let out = elsewhere(&["journal", "resolve"]);
    assert_exit(&out, 4);
    assert!(out.stdout.contains("on another organization"), "{out:?}");
    let dry = elsewhere(&["journal", "resolve", "--dry-run"]);
    assert_exit(&dry, 0);
    assert!(dry.stdout.contains("on another organization"), "{dry:?}");
    assert!(
        other.sim.requests().iter().all(|r| r.method == "GET"),
        "the other server was asked to revoke: {:?}",
        other.sim.requests()
    );
    assert_eq!(env.live("tenant_a").len(), 2, "the orphan is still live");
    // Against its own API, it is revoked.
    let out = env.mdops().args(["journal", "resolve"]).output();
    assert_exit(&out, 0);
    assert!(out.stdout.contains("revoked"), "{out:?}");
    let names: Vec<String> = env.live("tenant_a").into_iter().map(|t| t.0).collect();
    assert_eq!(names, ["app"]);
    let out = elsewhere(&["journal", "resolve"]);
    assert_exit(&out, 0);
    assert_eq!(out.stdout, "(none)\n", "{out:?}");
}

/// One URL serves every organization: a dead run's tokens are not settled
/// with another admin token (another organization's, or this one's after a
/// rotation) until the operator says it is the same organization.
#[cfg(unix)]
#[test]
fn a_dead_run_of_another_admin_token_waits_for_the_operator() {
    let env = killed_while_minting();
    let rotated = "rotated-admin-token-0123456789";
    env.org().admin_token = rotated.into();
    std::fs::write(&env.token_file, format!("{rotated}\n")).unwrap();
    let out = env.run("n.rhai", "tokens::list(\"tenant_a\").len()", &[]);
    assert_exit(&out, 0);
    assert!(
        out.stderr
            .contains("on another organization (another admin token)")
            && out.stderr.contains("`mdops journal resolve --same-org`"),
        "{out:?}"
    );
    let out = env.mdops().args(["journal", "resolve"]).output();
    assert_exit(&out, 4);
    assert_eq!(env.live("tenant_a").len(), 2, "the orphan waits");
    let out = env
        .mdops()
        .args(["journal", "resolve", "--same-org"])
        .output();
    assert_exit(&out, 0);
    assert!(out.stdout.contains("revoked"), "{out:?}");
    let names: Vec<String> = env.live("tenant_a").into_iter().map(|t| t.0).collect();
    assert_eq!(names, ["app"]);
}

/// The journal entry of the token `tenant_a`'s run is delivering, once the
/// delivery is announced: (token id, target it was going to).
fn announced(env: &Env) -> Option<(String, String)> {
    let db = rusqlite::Connection::open(env.home.path().join("state.db")).ok()?;
    db.busy_timeout(Duration::from_secs(5)).ok()?;
    db.query_row(
        "SELECT token_id, delivering_to FROM token_journal WHERE delivering_to IS NOT NULL",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .ok()
}

/// Killed (SIGKILL) while a sink is written: the next `journal resolve` reads
/// a file target back. Not holding the token, nobody received it: revoked.
/// Holding it, the delivery is recorded and the token kept. A target mdops
/// cannot read back (a command) keeps its token, and the operator is told.
#[cfg(unix)]
#[test]
fn killed_while_delivering_is_checked_at_the_target_later() {
    for case in [
        "file not written",
        "file written",
        "command",
        "file of another machine",
    ] {
        let env = Env::with_seed(&seed(&[("tenant_a", &[("app", "10d")])]));
        let dir = tempfile::tempdir().unwrap();
        let account_dir = dir.path().join("tenant_a");
        std::fs::create_dir(&account_dir).unwrap();
        let file = account_dir.join("app.token");
        let started = dir.path().join("started");
        let deliver = if case == "command" {
            format!(
                r#"secrets::to_command(["sh", "-c", "echo $$ > {}; exec sleep 60"], t.token);"#,
                started.display()
            )
        } else {
            format!(r#"secrets::to_file("{}", t.token);"#, file.display())
        };
        // A file delivery waits on the directory's lock, held here.
        let held = std::fs::File::open(&account_dir).unwrap();
        held.lock().unwrap();
        let script = env.script(
            "d.rhai",
            &format!("let t = tokens::create(\"tenant_a\", \"app.g1\");\n{deliver}"),
        );
        let child = spawn(
            &env,
            &["--command-timeout", "60", "run", script.to_str().unwrap()],
        );
        wait_until(
            "the delivery to be announced",
            Duration::from_secs(20),
            || announced(&env).is_some(),
        );
        if case == "command" {
            wait_until("the command to start", Duration::from_secs(20), || {
                std::fs::read_to_string(&started).is_ok_and(|s| s.ends_with('\n'))
            });
        }
        signal(&child, "-KILL");
        let _ = child.wait_with_output().unwrap();
        if case == "command" {
            let pid = std::fs::read_to_string(&started).unwrap();
            let _ = std::process::Command::new("kill")
                .args(["-KILL", pid.trim()])
                .status();
        }
        drop(held);
        let (id, target) = announced(&env).unwrap();
        let secret = env
            .live("tenant_a")
            .into_iter()
            .find(|t| t.0 == "app.g1")
            .expect("the new token is live")
            .1;
        if case == "file written" {
            std::fs::write(&file, format!("{secret}\n")).unwrap();
        }
        if case == "file of another machine" {
            // As a runner elsewhere, sharing this journal, would have left it.
            let db = rusqlite::Connection::open(env.home.path().join("state.db")).unwrap();
            db.execute(
                "UPDATE token_journal SET delivering_host = 'elsewhere' WHERE token_id = ?1",
                [&id],
            )
            .unwrap();
        }
        let out = env.mdops().args(["journal", "resolve"]).output();
        assert_exit(&out, 0);
        let live: Vec<String> = env.live("tenant_a").into_iter().map(|t| t.0).collect();
        let journal = env.mdops().args(["journal"]).output();
        match case {
            "file not written" => {
                assert_eq!(live, ["app"], "{out:?}");
                assert!(
                    out.stdout.contains(&id) && out.stdout.contains("revoked"),
                    "{out:?}"
                );
            }
            "file written" => {
                assert_eq!(live, ["app", "app.g1"], "{out:?}");
                assert!(
                    out.stderr.contains(&format!(
                        "token {id} of tenant_a: a run that died was delivering it to {target}, which holds it: recorded as delivered"
                    )),
                    "{out:?}"
                );
                assert!(journal.stdout.contains(&target), "{journal:?}");
            }
            "command" => {
                assert_eq!(live, ["app", "app.g1"], "{out:?}");
                assert!(
                    out.stderr.contains(&format!(
                        "token {id} of tenant_a: a run that died was delivering it to command:"
                    )) && out.stderr.contains("if command:"),
                    "{out:?}"
                );
                assert!(journal.stdout.contains("unconfirmed"), "{journal:?}");
            }
            _ => {
                // Not read here: this machine's file says nothing of that one.
                assert_eq!(live, ["app", "app.g1"], "{out:?}");
                assert!(
                    out.stderr.contains(&format!(
                        "token {id} of tenant_a: a run that died was delivering it to {target}, which cannot be read back here"
                    )),
                    "{out:?}"
                );
                assert!(journal.stdout.contains("unconfirmed"), "{journal:?}");
            }
        }
        assert!(!out.stderr.contains(&secret) && !out.stdout.contains(&secret));
        let again = env.mdops().args(["journal", "resolve"]).output();
        assert_exit(&again, 0);
        assert_eq!(again.stdout, "(none)\n", "{case}: resolved once");
        assert!(again.stderr.is_empty(), "{case}: {again:?}");
    }
}

/// Two runs at once delivering to one target: the second is refused before
/// it writes, so the first run's token is not left live with nobody holding
/// it; once that run has ended, a new run replaces its token as usual.
#[cfg(unix)]
#[test]
fn a_second_run_may_not_write_over_a_running_runs_delivery() {
    let env = Env::with_seed(&seed(&[("tenant_a", &[("app", "10d")])]));
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("app.token");
    let paused = dir.path().join("paused");
    // It delivers to a second place too: the first is still its.
    let first = env.script(
        "first.rhai",
        &format!(
            r#"let t = tokens::create("tenant_a", "app.g1");
secrets::to_file("{}", t.token);
secrets::to_file("{}", t.token);
sh(["sh", "-c", "echo $$ > {}; exec sleep 60"]);"#,
            target.display(),
            dir.path().join("copy.token").display(),
            paused.display()
        ),
    );
    let child = spawn(
        &env,
        &["--command-timeout", "60", "run", first.to_str().unwrap()],
    );
    wait_until("the first run to deliver", Duration::from_secs(20), || {
        std::fs::read_to_string(&paused).is_ok_and(|s| s.ends_with('\n'))
    });
    let held = std::fs::read_to_string(&target).unwrap();
    let second = format!(
        r#"let t = tokens::create("tenant_a", "app.g2");
secrets::to_file("{}", t.token);"#,
        target.display()
    );
    let out = env.run("second.rhai", &second, &[]);
    assert_exit(&out, 1);
    assert!(
        out.stderr.contains("delivered by run")
            && out
                .stderr
                .contains("still going on or began after this one")
            && out.stderr.contains("nothing was written"),
        "{out:?}"
    );
    assert_eq!(std::fs::read_to_string(&target).unwrap(), held);
    let live: Vec<String> = env.live("tenant_a").into_iter().map(|t| t.0).collect();
    assert_eq!(
        live,
        ["app", "app.g1"],
        "the refused run's token was revoked"
    );
    // The first run goes on and ends well.
    let pid = std::fs::read_to_string(&paused).unwrap();
    std::process::Command::new("kill")
        .args([pid.trim()])
        .status()
        .unwrap();
    let done = child.wait_with_output().unwrap();
    assert_eq!(done.status.code(), Some(0), "{done:?}");
    // Afterwards a run replaces that token as usual.
    let third = second.replace("app.g2", "app.g3");
    let out = env.run("third.rhai", &third, &[]);
    assert_exit(&out, 0);
    assert_ne!(std::fs::read_to_string(&target).unwrap(), held);
}
