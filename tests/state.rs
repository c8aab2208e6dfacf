//! Local state: inventory, token journal, audit log, secret sinks.

use crate::support::{assert_exit, json_result, Cmd, Env};
use std::path::Path;

/// Every file under `dir`, recursively, as bytes.
fn all_files(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            out.extend(all_files(&p));
        } else {
            out.push((p.clone(), std::fs::read(&p).unwrap()));
        }
    }
    out
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn minted_secrets_reach_only_their_sinks() {
    let env = Env::new();
    let sinks = tempfile::tempdir().unwrap();
    let s = sinks.path().display();
    let script = format!(
        r#"
        let a = tokens::create("etl_pipeline", #{{name: "to-file", ttl: "30d"}});
        let b = tokens::create("etl_pipeline", #{{name: "to-env", ttl: "30d"}});
        let c = tokens::create("bi_tool", #{{name: "to-cmd", ttl: "1d", token_type: "read_scaling"}});
        secrets::to_file("{s}/etl.token", a.token);
        secrets::to_env_file("{s}/app.env", "MD_TOKEN", b.token);
        secrets::to_command("cat > {s}/from-cmd.txt", c.token);
        print(a); print(b.token); debug(c);
        print(`${{a.token}} ${{b.token.fingerprint()}}`);
        let revealed = a.token.reveal();
        print(tokens::verify("etl_pipeline", a.token));
        #{{a: a, list: tokens::list("etl_pipeline")}}
        "#
    );
    std::fs::write(sinks.path().join("app.env"), "KEEP=1\nMD_TOKEN=old\n").unwrap();
    for output in ["text", "json"] {
        let out = env.run("mint.rhai", &script, &["--output", output]);
        assert_exit(&out, 0);
        let org = env.org();
        let minted: Vec<String> = org
            .users
            .values()
            .flat_map(|u| u.tokens.iter())
            .filter(|t| t.name.starts_with("to-"))
            .map(|t| t.secret.clone())
            .collect();
        assert_eq!(minted.len(), 3);
        for secret in &minted {
            assert!(
                !out.stdout.contains(secret.as_str()),
                "stdout leaks a secret ({output})"
            );
            assert!(
                !out.stderr.contains(secret.as_str()),
                "stderr leaks a secret ({output})"
            );
            for (path, bytes) in all_files(env.home.path()) {
                let text = String::from_utf8_lossy(&bytes);
                assert!(
                    !text.contains(secret.as_str()),
                    "{} holds a secret",
                    path.display()
                );
            }
        }
        let find = |name: &str| {
            org.users
                .values()
                .flat_map(|u| u.tokens.iter())
                .rfind(|t| t.name == name)
                .unwrap()
                .secret
                .clone()
        };
        let file = sinks.path().join("etl.token");
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            format!("{}\n", find("to-file"))
        );
        assert_eq!(
            std::fs::read_to_string(sinks.path().join("app.env")).unwrap(),
            format!("KEEP=1\nMD_TOKEN={}\n", find("to-env"))
        );
        assert_eq!(
            std::fs::read_to_string(sinks.path().join("from-cmd.txt")).unwrap(),
            format!("{}\n", find("to-cmd"))
        );
        assert_eq!(mode(&file), 0o600, "a new sink file is private");
        assert_eq!(
            mode(&sinks.path().join("app.env")),
            0o644,
            "an existing env file keeps its mode"
        );
        drop(org);
        let out = env.run("clean.rhai", "for t in tokens::list(\"etl_pipeline\") { if t.name.starts_with(\"to-\") { tokens::revoke(\"etl_pipeline\", t.id); } } for t in tokens::list(\"bi_tool\") { if t.name == \"to-cmd\" { tokens::revoke(\"bi_tool\", t.id); } }", &[]);
        assert_exit(&out, 0);
    }
    for (path, bytes) in all_files(env.home.path()) {
        if path != env.token_file {
            let text = String::from_utf8_lossy(&bytes);
            assert!(
                !text.contains(crate::support::ADMIN),
                "{} holds the admin token",
                path.display()
            );
        }
    }
    assert_eq!(mode(&env.home.path().join("journal.key")), 0o600);
    assert_eq!(mode(&env.home.path().join("state.db")), 0o600);
}

#[test]
fn the_journal_follows_a_token_from_mint_to_revocation() {
    let env = Env::new();
    let dir = tempfile::tempdir().unwrap();
    let out = env.run(
        "j.rhai",
        &format!(
            r#"
            let t = tokens::create("etl_pipeline", #{{name: "journaled", ttl: "7d"}});
            secrets::to_file("{}/t", t.token);
            if tokens::verify("etl_pipeline", t.token) {{ journal::mark_verified(t.token); }}
            tokens::revoke("etl_pipeline", t.id);
            t.id
            "#,
            dir.path().display()
        ),
        &[],
    );
    assert_exit(&out, 0);
    let id = out.stdout.trim().to_string();
    let out = env.mdops().args(["journal", "--output", "json"]).output();
    assert_exit(&out, 0);
    let rows = json_result(&out);
    let row = &rows[0];
    assert_eq!(row["token_id"], id.as_str());
    assert_eq!(row["username"], "etl_pipeline");
    assert_eq!(row["name"], "journaled");
    for field in ["minted_at", "delivered_at", "verified_at", "revoked_at"] {
        assert!(row[field].is_string(), "{field} not recorded: {row}");
    }
    assert_eq!(row["sink"], format!("file:{}/t", dir.path().display()));
    assert_eq!(row["fingerprint"].as_str().unwrap().len(), 64);
}

#[test]
fn the_audit_log_records_every_mutating_call_and_filters() {
    let env = Env::new();
    let out = env.run(
        "a.rhai",
        r#"
        accounts::create("audited_one");
        let t = tokens::create("audited_one", "first");
        tokens::revoke("audited_one", t.id);
        ducklings::update("audited_one", #{read_write: #{instance_size: "jumbo"}});
        try { accounts::create("audited_one"); } catch (e) { }
        try { tokens::list("ghost"); } catch (e) { }
        accounts::delete("audited_one");
        "#,
        &["--yes"],
    );
    assert_exit(&out, 0);
    let rows = env.audit_rows(&["--account", "AUDITED_ONE"]);
    let summary: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "{} {} {}",
                r["operation"].as_str().unwrap(),
                r["outcome"].as_str().unwrap(),
                r["status"]
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            "create account ok null",
            "create token ok null",
            "revoke token ok null",
            "set ducklings ok null",
            "create account error 400",
            "delete account ok null",
        ]
    );
    assert_eq!(
        rows[3]["detail"],
        "read_write.instance_size: standard → jumbo"
    );
    assert!(rows[1]["target"]
        .as_str()
        .unwrap()
        .starts_with("audited_one/"));
    let out = env
        .mdops()
        .args(["audit", "--since", "1h", "--limit", "2"])
        .output();
    assert_exit(&out, 0);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{out:?}");
    assert!(lines[0].starts_with("at "));
    assert!(lines[3].contains("delete account  audited_one"), "{out:?}");
    let out = env
        .mdops()
        .args(["audit", "--since", "2999-01-01T00:00:00Z"])
        .output();
    assert_eq!(out.stdout, "(none)\n");
    let out = env.mdops().args(["audit", "--since", "yesterday"]).output();
    assert_exit(&out, 2);
}

#[test]
fn inventory_commands_and_script_functions() {
    let env = Env::new();
    let csv = env.script(
        "inv.csv",
        "username,owner,purpose,tags\nbi_tool,bi-team,dashboards,bi;prod\nold_gone,,,\n",
    );
    let out = env
        .mdops()
        .args(["inventory", "import", csv.to_str().unwrap()])
        .output();
    assert_exit(&out, 0);
    assert_eq!(
        out.stdout,
        format!("imported 2 entries from {}\n", csv.display())
    );
    let out = env
        .mdops()
        .args([
            "inventory",
            "add",
            "etl_pipeline",
            "--owner",
            "data",
            "--tag",
            "etl",
        ])
        .output();
    assert_exit(&out, 0);
    let out = env.run(
        "inv.rhai",
        r#"
        let e = inventory::get("BI_TOOL");
        print(`${e.username} ${e.owner} ${e.tags} ${e.source}`);
        inventory::add("bi_tool", #{purpose: "looker", cost_centre: "42"});
        let e = inventory::get("bi_tool");
        print(`${e.owner} ${e.purpose} ${e.cost_centre}`);
        print(inventory::get("nobody"));
        print(accounts::list());
        print(inventory::remove("old_gone"));
        print(inventory::remove("old_gone"));
        inventory::list().map(|e| e.username)
        "#,
        &[],
    );
    assert_exit(&out, 0);
    assert_eq!(
        out.stdout,
        "bi_tool bi-team [\"bi\", \"prod\"] imported\nbi-team looker 42\n\n[\"bi_tool\", \"etl_pipeline\", \"old_gone\"]\ntrue\nfalse\nbi_tool\netl_pipeline\n"
    );
    let out = env
        .mdops()
        .args(["inventory", "export", "--format", "csv"])
        .output();
    assert_exit(&out, 0);
    assert!(out.stdout.starts_with("username,owner,purpose,tags,source,first_seen,last_seen\nbi_tool,bi-team,looker,bi;prod,imported,"), "{out:?}");
    let bad = env.script(
        "bad.json",
        r#"[{"username": "fine_one"}, {"username": ""}]"#,
    );
    let out = env
        .mdops()
        .args(["inventory", "import", bad.to_str().unwrap()])
        .output();
    assert_exit(&out, 2);
    assert_eq!(
        out.stderr,
        format!(
            "error: {}:entry 2: username must not be empty (nothing was imported)\n",
            bad.display()
        )
    );
    let out = env
        .mdops()
        .args(["inventory", "list", "--output", "json"])
        .output();
    let rows: Vec<serde_json::Value> = serde_json::from_value(json_result(&out)).unwrap();
    assert_eq!(rows.len(), 2, "the bad import added nothing");
}

#[test]
fn reconcile_reports_both_ways_and_adopts() {
    let env = Env::new();
    let out = env
        .mdops()
        .args(["inventory", "add", "vanished_acct"])
        .output();
    assert_exit(&out, 0);
    let out = env.mdops().args(["inventory", "reconcile"]).output();
    assert_exit(&out, 0);
    assert_eq!(
        out.stdout,
        "on the server, not in the inventory: bi_tool, etl_pipeline\nin the inventory, gone from the server: vanished_acct\n"
    );
    let out = env
        .mdops()
        .args(["inventory", "reconcile", "--adopt", "--output", "json"])
        .output();
    assert_exit(&out, 0);
    let doc = json_result(&out);
    assert_eq!(
        doc["adopted"],
        serde_json::json!(["bi_tool", "etl_pipeline"])
    );
    let out = env.mdops().args(["inventory", "reconcile"]).output();
    assert_eq!(out.stdout, "on the server, not in the inventory: (none)\nin the inventory, gone from the server: vanished_acct\n");
    assert!(
        env.sim.writes().is_empty(),
        "reconcile only reads the server"
    );
}

#[test]
fn dry_run_plans_sinks_and_inventory_changes() {
    let env = Env::new();
    let dir = tempfile::tempdir().unwrap();
    let out = env.run(
        "plan.rhai",
        &format!(
            "let t = tokens::create(\"bi_tool\", \"planned\");\nsecrets::to_file(\"{0}/x\", t.token);\nsecrets::to_command(\"cat > {0}/y\", t.token);\ninventory::add(\"bi_tool\", #{{owner: \"me\"}});\ninventory::remove(\"bi_tool\");\n",
            dir.path().display()
        ),
        &["--dry-run"],
    );
    assert_exit(&out, 0);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines[0],
        "[dry-run] create token bi_tool: read_write token \"planned\", no expiry"
    );
    assert!(
        lines[1].starts_with(&format!(
            "[dry-run] deliver secret file:{}/x: <secret ",
            dir.path().display()
        )),
        "{out:?}"
    );
    assert!(lines[2].starts_with("[dry-run] deliver secret command:cat > "));
    assert_eq!(lines[3], "[dry-run] add to inventory bi_tool");
    assert_eq!(lines[4], "[dry-run] remove from inventory bi_tool");
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "no sink was written"
    );
    assert!(env.sim.writes().is_empty());
    let out = env.mdops().args(["inventory", "list"]).output();
    assert_eq!(out.stdout, "(none)\n");
}

/// A token whose delivery failed is not left live with nobody holding it:
/// the run revokes it at its end, says so, and the journal shows it revoked.
#[test]
fn a_sink_in_a_missing_directory_fails_and_the_token_is_revoked() {
    let env = Env::new();
    let out = env.run(
        "s.rhai",
        "let t = tokens::create(\"bi_tool\", \"undelivered\");\nsecrets::to_file(\"/nonexistent-dir/t\", t.token);\n",
        &[],
    );
    assert_exit(&out, 1);
    assert!(
        out.stderr.starts_with("error: cannot write /nonexistent-dir/t: directory /nonexistent-dir does not exist\n  --> s.rhai:2:10\n"),
        "{out:?}"
    );
    assert!(
        out.stderr.contains("warning: token \"undelivered\" (")
            && out.stderr.contains(") of bi_tool was minted in this run but never delivered, revealed or released: revoked\n"),
        "{out:?}"
    );
    let out = env
        .mdops()
        .args(["journal", "--account", "bi_tool", "--output", "json"])
        .output();
    let rows: Vec<serde_json::Value> = serde_json::from_value(json_result(&out)).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["name"], "undelivered");
    assert!(rows[0]["delivered_at"].is_null());
    assert!(rows[0]["revoked_at"].is_string(), "{rows:?}");
    let id = rows[0]["token_id"].as_str().unwrap();
    assert!(
        !env.org().users["bi_tool"].tokens.iter().any(|t| t.id == id),
        "the undelivered token is revoked"
    );
    assert!(env.org().revoked.values().any(|r| r == id));
}

#[test]
fn a_failing_sink_command_reports_its_stderr_without_the_secret() {
    let env = Env::new();
    let out = env.run(
        "c.rhai",
        "let t = tokens::create(\"bi_tool\", \"cmd\");\nsecrets::to_command(\"read v; echo \\\"vault says no to $v\\\" >&2; exit 7\", t.token);\n",
        &[],
    );
    assert_exit(&out, 1);
    let org = env.org();
    assert!(
        !org.users["bi_tool"].tokens.iter().any(|t| t.name == "cmd"),
        "the undelivered token was revoked"
    );
    for secret in org.revoked.keys() {
        assert!(!out.stderr.contains(secret.as_str()));
    }
    drop(org);
    assert!(
        out.stderr
            .contains("failed with exit code 7: vault says no to <secret "),
        "{out:?}"
    );
}

#[test]
fn an_unusable_state_directory_stops_writes_before_they_happen() {
    let env = Env::new();
    let blocker = env.home.path().join("not-a-dir");
    std::fs::write(&blocker, "file").unwrap();
    let script = env.script(
        "w.rhai",
        "print(\"before\");\ntokens::create(\"bi_tool\", \"never\");\n",
    );
    let out = env
        .mdops()
        .args([
            "--data-dir",
            blocker.join("state").to_str().unwrap(),
            "run",
            script.to_str().unwrap(),
        ])
        .output();
    // The run's lock lives in the data dir too: the run stops there, before anything.
    assert_exit(&out, 2);
    assert!(
        out.stderr.starts_with("error: cannot create ") && out.stderr.contains("Not a directory"),
        "{out:?}"
    );
    assert!(env.sim.writes().is_empty(), "nothing was minted");

    let corrupt = tempfile::tempdir().unwrap();
    std::fs::write(corrupt.path().join("state.db"), vec![b'x'; 4096]).unwrap();
    let out = env
        .mdops()
        .args([
            "--data-dir",
            corrupt.path().to_str().unwrap(),
            "run",
            script.to_str().unwrap(),
        ])
        .output();
    assert_exit(&out, 1);
    assert!(
        out.stderr.contains("state.db: file is not a database"),
        "{out:?}"
    );
    assert!(env.sim.writes().is_empty());
    let out = Cmd::bare(corrupt.path()).args(["audit"]).output();
    assert_exit(&out, 1);
    assert!(out.stderr.contains("file is not a database"));
}

#[test]
fn two_runs_recording_at_once_both_succeed() {
    let env = Env::new();
    // Two different jobs (one job cannot overlap itself: it holds a lock).
    let script = env.script(
        "many.rhai",
        "let who = arg(\"who\");\nfor i in 0..25 { let t = tokens::create(\"bi_tool\", `${who}-${i}`); t.token.reveal(); inventory::add(`${who}_${i}`, #{owner: who}); }\n",
    );
    let other = env.home.path().join("many-too.rhai");
    std::fs::copy(&script, &other).unwrap();
    let spawn = |who: &str| {
        let file = if who == "alpha" { &script } else { &other };
        let mut c = env.mdops();
        c.cmd
            .args([
                "run",
                file.to_str().unwrap(),
                "--arg",
                &format!("who={who}"),
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        c.cmd.spawn().unwrap()
    };
    let (a, b) = (spawn("alpha"), spawn("beta"));
    for child in [a, b] {
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = env.mdops().args(["journal", "--output", "json"]).output();
    let rows: Vec<serde_json::Value> = serde_json::from_value(json_result(&out)).unwrap();
    assert_eq!(rows.len(), 50);
    let out = env.mdops().args(["audit", "--output", "json"]).output();
    let rows: Vec<serde_json::Value> = serde_json::from_value(json_result(&out)).unwrap();
    assert_eq!(rows.len(), 50);
    let out = env
        .mdops()
        .args(["inventory", "list", "--output", "json"])
        .output();
    let rows: Vec<serde_json::Value> = serde_json::from_value(json_result(&out)).unwrap();
    assert_eq!(rows.len(), 50);
}

#[test]
fn a_run_waits_for_another_writer_instead_of_failing() {
    let env = Env::new();
    // Create the database, then hold its write lock from "another process" for a while.
    let out = env.mdops().args(["inventory", "add", "first_one"]).output();
    assert_exit(&out, 0);
    let db = env.home.path().join("state.db");
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let holder = std::thread::spawn(move || {
        let conn = rusqlite::Connection::open(db).unwrap();
        conn.execute_batch("BEGIN IMMEDIATE; INSERT INTO inventory (username, source, first_seen, last_seen) VALUES ('held', 'added', 'x', 'x');").unwrap();
        locked_tx.send(()).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1500));
        conn.execute_batch("COMMIT;").unwrap();
    });
    locked_rx.recv().unwrap();
    let started = std::time::Instant::now();
    let out = env.run(
        "w.rhai",
        "tokens::create(\"bi_tool\", \"waited\").token.reveal(); inventory::list().len()",
        &[],
    );
    holder.join().unwrap();
    assert_exit(&out, 0);
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(1000),
        "it did wait for the lock"
    );
    assert_eq!(out.stdout, "2\n");
}
