use crate::support::{assert_exit, Env};

#[test]
fn list_has_api_fields_and_derived_ones() {
    let env = Env::new();
    let out = env.run(
        "list.rhai",
        r#"
        let ts = tokens::list("etl_pipeline");
        let names = ts.map(|t| t.name);
        names.sort();
        print(names);
        for t in ts {
            if t.name == "airflow" {
                print(`${t.id} ${t.token_type} ${t.read_only} ${t.expire_at} ${t.expires_in} ${t.expired} ${t.age / 86400}`);
            }
            if t.name == "dbt" {
                print(`${t.expires_in / 86400} ${t.expired} ${type_of(t.created_ts)}`);
            }
        }
        "#,
        &[],
    );
    assert_exit(&out, 0);
    // "old" expired (100 days old, 30-day ttl): the API leaves it out.
    assert_eq!(
        out.stdout,
        "[\"airflow\", \"dbt\"]\n11111111-1111-4111-8111-111111111111 read_write false   false 400\n79 false string\n"
    );
}

#[test]
fn create_returns_a_redacted_secret_that_authenticates() {
    let env = Env::new();
    let out = env.run(
        "mint.rhai",
        r#"
        let t = tokens::create("bi_tool", #{name: "superset", ttl: "90d", token_type: "read_scaling"});
        print(t.token);
        print(`${t.token}`);
        print(t);
        print(t.token_type + " " + t.expires_in);
        print(tokens::verify("bi_tool", t.token));
        print(tokens::verify("etl_pipeline", t.token));
        print(tokens::verify("bi_tool", "not-a-token"));
        let kept = t.token.reveal();
        t.token.fingerprint()
        "#,
        &[],
    );
    assert_exit(&out, 0);
    let org = env.org();
    let minted = org.users["bi_tool"]
        .tokens
        .iter()
        .find(|t| t.name == "superset")
        .expect("minted");
    assert!(
        !out.stdout.contains(&minted.secret),
        "secret leaked:\n{}",
        out.stdout
    );
    assert!(!out.stderr.contains(&minted.secret));
    let fp = mdops::api::SecretString::new(minted.secret.clone()).fingerprint();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], format!("<secret {fp}>"));
    assert_eq!(lines[1], format!("<secret {fp}>"));
    assert!(
        lines[2].contains(&format!("\"token\": <secret {fp}>")),
        "{}",
        lines[2]
    );
    assert_eq!(lines[3], "read_scaling 7776000");
    assert_eq!(&lines[4..7], ["true", "false", "false"]);
    assert_eq!(lines[7], fp);
    assert_eq!(minted.token_type, mdops::api::TokenType::ReadScaling);
}

#[test]
fn reveal_is_explicit() {
    let env = Env::new();
    let out = env.run(
        "reveal.rhai",
        "tokens::create(\"bi_tool\", \"plain\").token.reveal()",
        &[],
    );
    assert_exit(&out, 0);
    let org = env.org();
    let minted = org.users["bi_tool"]
        .tokens
        .iter()
        .find(|t| t.name == "plain")
        .unwrap();
    assert_eq!(out.stdout, format!("{}\n", minted.secret));
    assert!(minted.expires.is_none(), "no ttl means no expiry");
}

#[test]
fn revoke_removes_the_token_and_its_access() {
    let env = Env::new();
    let out = env.run(
        "revoke.rhai",
        r#"
        print(tokens::verify("etl_pipeline", "etl-secret-airflow-000000000000"));
        tokens::revoke("etl_pipeline", "11111111-1111-4111-8111-111111111111");
        print(tokens::verify("etl_pipeline", "etl-secret-airflow-000000000000"));
        try {
            tokens::revoke("etl_pipeline", "11111111-1111-4111-8111-111111111111");
        } catch (e) {
            print(`${e.status} ${e.code}`);
        }
        "#,
        &[],
    );
    assert_exit(&out, 0);
    assert_eq!(out.stdout, "true\nfalse\n404 NOT_FOUND\n");
    assert_eq!(env.token_names("etl_pipeline"), ["dbt", "old"]);
}

#[test]
fn a_service_account_token_lists_and_mints_its_own_tokens_only() {
    let env = Env::new();
    let own = env.home.path().join("own.token");
    std::fs::write(&own, "etl-secret-dbt-0000000000000000").unwrap();
    let mut cmd = env.mdops();
    cmd.cmd.current_dir(env.home.path());
    let script = env.script("own.rhai", "print(tokens::list(\"etl_pipeline\").len()); tokens::create(\"etl_pipeline\", \"self-made\"); tokens::list(\"bi_tool\")");
    let out = crate::support::Cmd::bare(env.home.path())
        .env("MOTHERDUCK_API_BASE_URL", &env.sim.url())
        .args([
            "--token-file",
            own.to_str().unwrap(),
            "run",
            script.to_str().unwrap(),
        ])
        .output();
    assert_exit(&out, 3);
    assert_eq!(out.stdout, "2\n");
    assert!(out.stderr.starts_with("error: GET /v1/users/bi_tool/tokens failed with 403 Forbidden (FORBIDDEN): Unauthorized [minimum role org_admin is required]"), "{out:?}");
    assert!(env
        .token_names("etl_pipeline")
        .contains(&"self-made".to_string()));
}

#[test]
fn verbose_logs_never_carry_secrets() {
    let env = Env::new();
    let path = env.script(
        "v.rhai",
        "let t = tokens::create(\"bi_tool\", \"logged\"); t.token.reveal(); tokens::verify(\"bi_tool\", t.token)",
    );
    let out = env
        .mdops()
        .args(["-v", "run", path.to_str().unwrap()])
        .output();
    assert_exit(&out, 0);
    assert!(
        out.stderr.contains("api call"),
        "verbose logging is on: {out:?}"
    );
    let org = env.org();
    let minted = org.users["bi_tool"]
        .tokens
        .iter()
        .find(|t| t.name == "logged")
        .unwrap();
    for text in [&out.stdout, &out.stderr] {
        assert!(!text.contains(&minted.secret));
        assert!(!text.contains(crate::support::ADMIN));
    }
}

#[test]
fn path_segments_are_percent_encoded() {
    let env = Env::new();
    let out = env.run(
        "p.rhai",
        "let r = \"\"; try { tokens::list(\"b?c#d e\"); } catch (e) { r = `${e.status} ${e.code} ${e.path}`; } r",
        &[],
    );
    assert_exit(&out, 0);
    // A JSON NOT_FOUND for the user, not the emulator's plain-text "no such route".
    assert_eq!(out.stdout, "404 NOT_FOUND /v1/users/b%3Fc%23d%20e/tokens\n");
    assert_eq!(env.sim.requests()[0].path, "/v1/users/b%3Fc%23d%20e/tokens");
}

/// A short-lived token is the caller's: minted with an account's own token it
/// belongs to that account; with the admin token, to its holder. One day,
/// read_scaling, its context keys lowercased; and like any mint, revoked at
/// the end of the run unless delivered or revealed.
#[test]
fn short_lived_tokens_are_the_callers_and_follow_the_no_orphan_rule() {
    let env = Env::new();
    env.rhai(
        "sl.rhai",
        r#"
        let own = tokens::create("bi_tool", "own");
        own.token.reveal();
        let s = tokens::short_lived(#{username: "bi_tool", token: own.token, context: #{Tenant: "acme"}});
        print(`${s.token_type} ${s.expires_in <= 86400} ${type_of(s.token)}`);
        s.token.reveal();
        let mine = tokens::short_lived(#{username: "ada"});
        mine.token.reveal();
        ()
        "#,
    )
    .stdout("read_scaling true Secret\n")
    .run();
    let org = env.org();
    let sl: Vec<_> = org.users["bi_tool"]
        .tokens
        .iter()
        .filter(|t| t.name == "short-lived")
        .collect();
    assert_eq!(sl.len(), 1);
    assert_eq!(sl[0].token_type, mdops::api::TokenType::ReadScaling);
    assert_eq!(
        sl[0].context.as_ref().unwrap()["tenant"],
        serde_json::json!("acme"),
        "keys lowercased"
    );
    let life = sl[0].expires.unwrap() - sl[0].created;
    assert!(life <= chrono::Duration::days(1));
    assert!(
        org.users["ada"]
            .tokens
            .iter()
            .any(|t| t.name == "short-lived"),
        "the admin's own"
    );
    drop(org);
    // Dropped on the floor: revoked when the run ends, and said so.
    let before = env.org().revoked.len();
    env.rhai(
        "drop.rhai",
        r#"tokens::short_lived(#{username: "ada"}); "done""#,
    )
    .status(4)
    .stdout("done\n")
    .stderr_has(&[
        "short-lived",
        "never delivered, revealed or released: revoked",
    ])
    .run();
    assert_eq!(env.org().revoked.len(), before + 1);
    // Checked before anything is sent.
    let sent = env.sim.requests().len();
    for (opts, why) in [
        ("#{}", "give the username"),
        (
            "#{username: \"ada\", context: #{n: 1}}",
            "context values are strings",
        ),
        ("#{username: \"ada\", ttl: 5}", "unknown option \"ttl\""),
    ] {
        env.rhai("bad.rhai", &format!("tokens::short_lived({opts})"))
            .status(1)
            .stderr_has(&[why])
            .run();
    }
    assert_eq!(env.sim.requests().len(), sent);
}

#[test]
fn a_verification_started_early_answers_once_and_as_verify_would() {
    let env = Env::new();
    let out = env.run(
        "start.rhai",
        r#"
        let t = tokens::create("bi_tool", #{name: "superset"});
        let v = tokens::start_verify("bi_tool", t.token);
        print(type_of(v));
        print(v.wait());
        print(v.wait());
        tokens::revoke("bi_tool", t.id);
        print(tokens::start_verify("bi_tool", t.token).wait());
        print(tokens::start_verify("etl_pipeline", "not-a-token").wait());
        "#,
        &[],
    );
    assert_exit(&out, 0);
    assert_eq!(out.stdout, "Verification\ntrue\ntrue\nfalse\nfalse\n");
    // Asked twice, sent once: the answer is kept. (The create lists the
    // account's tokens first.)
    let sent: Vec<(String, u16)> = env
        .sim
        .requests()
        .iter()
        .map(|r| (r.method.clone(), r.status))
        .collect();
    let want = [
        ("GET", 200),
        ("POST", 200),
        ("GET", 200),
        ("DELETE", 200),
        ("GET", 401),
        ("GET", 401),
    ];
    assert_eq!(
        sent,
        want.map(|(m, s)| (m.to_string(), s)),
        "{:?}",
        env.sim.requests()
    );
}

/// The check is sent at once and the script goes on; a check nobody waits
/// for is dropped with the script, not waited for at the end of the run.
#[test]
fn a_started_verification_does_not_hold_the_script() {
    use mdops::sim::{Behaviour, Faults};
    let env = Env::with(
        crate::support::SEED,
        Behaviour {
            faults: Faults {
                hang_rate: 1.0,
                hang: std::time::Duration::from_secs(300),
                scope: Some("GET /v1/users/etl_pipeline/tokens".into()),
                ..Default::default()
            },
            ..Default::default()
        },
    );
    let go = env.home.path().join("go");
    let script = env.script(
        "early.rhai",
        &format!(
            r#"
        let t = tokens::create("bi_tool", #{{name: "superset"}});
        // Held by the server (as the other account's, it would be refused).
        let v = tokens::start_verify("etl_pipeline", t.token);
        sh(["sh", "-c", "while [ ! -e {} ]; do sleep 0.05; done"]);
        tokens::revoke("bi_tool", t.id);
        print("went on");
        "#,
            go.display()
        ),
    );
    let mut cmd = env.mdops();
    cmd.cmd
        .arg("run")
        .arg(&script)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = cmd.cmd.spawn().unwrap();
    // The check reaches the server while the script goes on.
    crate::support::wait_until(
        "the check to arrive",
        std::time::Duration::from_secs(30),
        || env.sim.arrived() >= 3,
    );
    let started = std::time::Instant::now();
    std::fs::write(&go, "").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "went on\n");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(120),
        "the run waited for the held answer"
    );
    assert_eq!(env.sim.arrived(), 4, "list, create, the check, revoke");
}

/// A token the journal cannot record (a full disk, say) is revoked again at
/// once, whichever kind it is, and the audit log holds both the create and
/// the revoke that undid it.
#[test]
fn a_token_the_journal_cannot_record_is_taken_back_and_audited() {
    let env = Env::new();
    // Open the state, then make it refuse every journal entry while attempts
    // still record, as a disk that fills between the two would.
    env.mdops().args(["audit"]).any_stdout().run();
    let db = rusqlite::Connection::open(env.home.path().join("state.db")).unwrap();
    db.execute_batch(
        "CREATE TRIGGER full BEFORE INSERT ON token_journal \
         BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END;",
    )
    .unwrap();
    drop(db);
    for (script, kind, owner, name) in [
        (
            r#"tokens::create("etl_pipeline", "ci")"#,
            "token",
            "etl_pipeline",
            "ci",
        ),
        (
            r#"tokens::short_lived(#{username: "ada"})"#,
            "short-lived token",
            "ada",
            "short-lived",
        ),
    ] {
        let out = env.rhai("mint.rhai", script).output();
        assert_exit(&out, 1);
        let said = out
            .stderr
            .lines()
            .find(|l| l.contains("was minted but the journal could not record it"))
            .unwrap_or_else(|| panic!("{out:?}"));
        assert!(
            said.contains(&format!("{kind} "))
                && said.contains(&format!(" for {owner} was minted"))
                && said.contains("it was revoked again"),
            "{said}"
        );
        assert!(
            !env.token_names(owner).iter().any(|n| n == name),
            "{name} is not left live"
        );
    }
    let summary: Vec<String> = env
        .audit_rows(&[])
        .iter()
        .map(|r| {
            format!(
                "{} {} {} {}",
                r["operation"].as_str().unwrap(),
                r["target"].as_str().unwrap().split('/').next().unwrap(),
                r["outcome"].as_str().unwrap(),
                r["detail"].as_str().unwrap_or("-")
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            "create token etl_pipeline ok read_write token \"ci\", no expiry",
            "revoke token etl_pipeline ok not journaled",
            "create short-lived token ada ok short-lived read_scaling token",
            "revoke token ada ok not journaled",
        ]
    );
}
