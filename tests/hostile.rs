//! Hostile input, hostile servers, misbehaving commands: one test per
//! finding, each driving the binary as an attacker would.

use crate::support::hostile::{json, Answer, Hostile};
use crate::support::{assert_exit, wait_until, Cmd, Env, Output};
use serde_json::json as j;
use std::time::{Duration, Instant};

const TOKEN: &str = "hostile-admin-token-5f2a9c1e7b";

/// Runs `script` against `url` with a private home and the admin token above.
fn against(url: &str, script: &str, extra: &[&str]) -> (tempfile::TempDir, Output) {
    let home = tempfile::tempdir().unwrap();
    let path = home.path().join("x.rhai");
    std::fs::write(&path, script).unwrap();
    let mut args = vec!["--api-url", url, "--retries", "0", "--timeout", "10"];
    args.extend_from_slice(extra);
    args.extend(["run", path.to_str().unwrap()]);
    let out = Cmd::bare(home.path())
        .env("MOTHERDUCK_ADMIN_TOKEN", TOKEN)
        .args(args)
        .output();
    (home, out)
}

fn tokens_of(list: serde_json::Value) -> Answer {
    json(200, j!({ "tokens": list }))
}

fn token(id: &str, name: &str, age_days: i64) -> serde_json::Value {
    let created = chrono::Utc::now() - chrono::Duration::days(age_days);
    j!({"id": id, "name": name, "created_ts": created.to_rfc3339(), "read_only": false, "token_type": "read_write"})
}

// 1. Path segments.

#[test]
fn a_path_segment_that_could_change_the_route_is_never_sent() {
    let server = Hostile::start(|_| json(200, j!({})));
    for (script, field) in [
        (
            "tokens::revoke(\"acct\", \"..\\t\")",
            "token id \"..\\t\" cannot be used: it contains the control character '\\t'",
        ),
        (
            "tokens::revoke(\"acct\", \"..\")",
            "token id \"..\" cannot be used",
        ),
        (
            "tokens::list(\"x\\ty\")",
            "username \"x\\ty\" cannot be used: it contains the control character '\\t'",
        ),
        (
            "tokens::revoke(\"acct\", \"a/b\")",
            "cannot be used: it contains a slash",
        ),
        ("ducklings::get(\"\\n\")", "cannot be used"),
    ] {
        let (_h, out) = against(&server.url, script, &[]);
        assert_exit(&out, 1);
        assert!(out.stderr.contains(field), "{script}: {out:?}");
    }
    assert!(
        server.seen().is_empty(),
        "not one request: {:?}",
        server.seen()
    );
}

#[test]
fn redirects_are_never_followed() {
    let server = Hostile::start(|seen| {
        Answer::Head(
            308,
            vec![(
                "location".into(),
                seen.path
                    .trim_end_matches('/')
                    .rsplit_once('/')
                    .map(|(p, _)| p.to_string())
                    .unwrap_or_default(),
            )],
        )
    });
    let (_h, out) = against(
        &server.url,
        "tokens::revoke(\"acct\", \"11111111-1111-4111-8111-111111111111\")",
        &[],
    );
    assert_exit(&out, 1);
    assert!(
        out.stderr
            .contains("failed with 308 Redirect — mdops does not follow redirects"),
        "{out:?}"
    );
    let seen = server.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].method, "DELETE");
    assert_eq!(
        seen[0].path,
        "/v1/users/acct/tokens/11111111-1111-4111-8111-111111111111"
    );
}

#[test]
fn ids_from_the_server_are_checked_reported_and_never_sent() {
    let server = Hostile::start(|seen| match (seen.method.as_str(), seen.path.as_str()) {
        ("GET", "/v1/users/acct/tokens") => tokens_of(j!([
            token("..\t", "evil", 400),
            token("good-1", "old", 400),
            token("good-1", "old", 400),
            token("new-1", "fresh", 1),
        ])),
        ("DELETE", _) => json(200, j!({})),
        _ => json(404, j!({"code": "NOT_FOUND", "message": "Not Found"})),
    });
    let (_h, out) = against(
        &server.url,
        "import \"select\" as s; let r = parallel([\"acct\"], |a| { let out = []; for t in tokens::list(a) { if t.age > 86400 * 300 { try { tokens::revoke(a, t.id); out.push(t.id); } catch (e) { out.push(`refused: ${e.message}`); } } } out }); r[0]",
        &[],
    );
    assert_exit(&out, 0);
    assert!(
        out.stdout
            .contains("refused: token id \"..\\t\" cannot be used"),
        "{out:?}"
    );
    let deletes: Vec<String> = server
        .seen()
        .into_iter()
        .filter(|s| s.method == "DELETE")
        .map(|s| s.path)
        .collect();
    assert_eq!(
        deletes,
        ["/v1/users/acct/tokens/good-1"],
        "the duplicate once, the bad id never"
    );
}

// 2. Shell.

#[test]
fn the_array_form_of_a_command_never_uses_a_shell() {
    let env = Env::new();
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("X");
    let out = env.run(
        "argv.rhai",
        &format!(
            "let t = tokens::create(\"bi_tool\", \"argv\"); t.token.reveal(); try {{ secrets::to_command([\"cat>/dev/null; touch {}\"], t.token); }} catch (e) {{ print(e.kind); }} sh([\"touch\", \"{}; rm -rf x\"]).ok",
            marker.display(),
            dir.path().join("Y").display()
        ),
        &[],
    );
    assert_exit(&out, 0);
    assert_eq!(out.stdout, "sink\ntrue\n");
    assert!(!marker.exists(), "no shell ran the one-element array");
    assert!(
        dir.path().join("Y; rm -rf x").exists(),
        "the argument reached touch whole"
    );
}

// 3. Secrets in server-provided text.

#[test]
fn an_error_body_that_echoes_the_token_is_redacted() {
    for status in [400, 401, 500] {
        let server = Hostile::start(move |seen| {
            json(
                status,
                j!({"code": "X", "message": format!("rejected header {}", seen.authorization.clone().unwrap_or_default()), "issues": [{"message": format!("token {TOKEN} is not valid")}]}),
            )
        });
        let (_h, out) = against(&server.url, "tokens::list(\"acct\")", &[]);
        assert!(matches!(out.code, 1 | 3 | 6), "{out:?}");
        assert!(
            !out.stderr.contains(TOKEN),
            "{status}: the admin token leaked: {out:?}"
        );
        assert!(
            out.stderr.contains("rejected header Bearer <secret "),
            "{out:?}"
        );
    }
}

// 4. Auth failures inside bulk work.

#[test]
fn a_refused_token_inside_parallel_stops_the_run_with_exit_3() {
    let env = Env::new();
    // bi_tool's own token may list bi_tool's tokens, not etl_pipeline's.
    std::fs::write(&env.token_file, "bi-secret-looker-00000000000000\n").unwrap();
    let out = env.run(
        "bulk.rhai",
        "parallel([\"bi_tool\", \"etl_pipeline\", \"bi_tool\"], |a| tokens::list(a).len(), #{concurrency: 1})",
        &[],
    );
    assert_exit(&out, 3);
    assert!(out.stderr.contains("403 Forbidden"), "{out:?}");
    let lists = env.sim.requests().len();
    assert_eq!(lists, 2, "the third item was never started");
}

// 5. Env files keep their shape (the rest is in the sink's unit tests).

#[test]
fn an_env_file_keeps_export_crlf_owner_and_mode() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let env = Env::new();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("app.env");
    std::fs::write(&file, "# app\r\nexport MD_TOKEN=old\r\nOTHER='a\r\nb'\r\n").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if root {
        std::os::unix::fs::chown(&file, Some(65534), Some(65534)).unwrap();
    }
    let out = env.run(
        "env.rhai",
        &format!("let t = tokens::create(\"bi_tool\", \"env\"); secrets::to_env_file(\"{}\", \"MD_TOKEN\", t.token).previous.reveal()", file.display()),
        &[],
    );
    assert_exit(&out, 0);
    assert_eq!(out.stdout, "old\n");
    let secret = env.org().users["bi_tool"]
        .tokens
        .iter()
        .find(|t| t.name == "env")
        .unwrap()
        .secret
        .clone();
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        format!("# app\r\nexport MD_TOKEN={secret}\r\nOTHER='a\r\nb'\r\n")
    );
    let meta = std::fs::metadata(&file).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o644);
    if root {
        assert_eq!(
            (meta.uid(), meta.gid()),
            (65534, 65534),
            "the owner is kept"
        );
    }
}

// 6. Unbounded bodies.

#[test]
fn an_endless_body_is_cut_off_with_bounded_memory() {
    let server = Hostile::start(|_| Answer::Endless);
    let started = Instant::now();
    let (_h, out) = against(
        &server.url,
        "tokens::list(\"acct\")",
        &["--max-response-mb", "2"],
    );
    assert_exit(&out, 1);
    assert!(
        out.stderr.contains("GET /v1/users/acct/tokens: the response is larger than 2 MB and was refused (see --max-response-mb)"),
        "{out:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
}

// 7. Commands that hang.

#[test]
fn a_command_returns_when_it_exits_and_a_hang_is_killed_with_its_group() {
    let env = Env::new();
    let dir = tempfile::tempdir().unwrap();
    let pid = dir.path().join("pid");
    let started = Instant::now();
    let out = env.run(
        "sh.rhai",
        &format!(
            "let a = sh(\"(sleep 25) & echo started\"); print(a.stdout);\n\
             let b = sh(\"sh -c 'echo $$ > {}; exec sleep 60' & sleep 60\"); print(`${{b.ok}} ${{b.timed_out}}`);",
            pid.display()
        ),
        &["--command-timeout", "2"],
    );
    assert_exit(&out, 0);
    assert_eq!(out.stdout, "started\n\nfalse true\n");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    let grandchild: i32 = std::fs::read_to_string(&pid)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    wait_until(
        "the grandchild to be killed",
        Duration::from_secs(10),
        || {
            // SAFETY: signal 0 only checks whether the process exists.
            unsafe { libc::kill(grandchild, 0) != 0 }
        },
    );
}

#[test]
fn ctrl_c_kills_a_running_command_and_its_children() {
    let env = Env::new();
    let dir = tempfile::tempdir().unwrap();
    let pid = dir.path().join("pid");
    let script = env.script(
        "hang.rhai",
        &format!(
            "sh(\"sh -c 'echo $$ > {}; exec sleep 60' & wait\");",
            pid.display()
        ),
    );
    let mut c = env.mdops();
    c.cmd
        .args(["run", script.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = c.cmd.spawn().unwrap();
    wait_until("the command to start", Duration::from_secs(20), || {
        std::fs::read_to_string(&pid).is_ok_and(|p| !p.trim().is_empty())
    });
    let grandchild: i32 = std::fs::read_to_string(&pid)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    wait_until(
        "the command's child to be killed",
        Duration::from_secs(10),
        || {
            // SAFETY: signal 0 only checks whether the process exists.
            unsafe { libc::kill(grandchild, 0) != 0 }
        },
    );
}

#[test]
fn a_deploy_command_that_prints_the_token_is_redacted() {
    let env = Env::with_seed(
        "admin_token = \"test-admin-token-0123456789\"\n[[accounts]]\nusername = \"tenant_a\"\ntokens = [{ name = \"app\", age = \"100d\" }]\n",
    );
    let dir = tempfile::tempdir().unwrap();
    let out = env
        .mdops()
        .args([
            "run",
            "rotate-tokens",
            "--arg",
            "accounts=tenant_a",
            "--arg",
            &format!("sink_dir={}", dir.path().display()),
            "--arg",
            &format!(
                "deploy_command=set -x; cat {}/{{account}}/{{name}}.token >&2; exit 1",
                dir.path().display()
            ),
        ])
        .output();
    assert_exit(&out, 4);
    let org = env.org();
    for secret in org.revoked.keys() {
        assert!(!out.stdout.contains(secret.as_str()), "{out:?}");
        assert!(!out.stderr.contains(secret.as_str()), "{out:?}");
    }
    assert!(
        out.stdout.contains("deploy command failed (exit 1): "),
        "{out:?}"
    );
    assert!(
        out.stdout.contains("<secret "),
        "the output is kept, redacted: {out:?}"
    );
}

// 8. Credentials echoed.

#[test]
fn credentials_never_appear_in_messages() {
    let home = tempfile::tempdir().unwrap();
    for url in [
        "http://user:PW123@host",
        "ftp://user:PW123@x",
        "https://a.example/?token=PW123",
        "https://a.example/#tok=PW123",
    ] {
        let out = Cmd::bare(home.path())
            .env("MOTHERDUCK_TOKEN", "t0ken-value")
            .args(["--api-url", url, "run", "overview"])
            .output();
        assert_exit(&out, 2);
        assert!(!out.stderr.contains("PW123"), "{url}: {out:?}");
    }
    std::fs::write(
        home.path().join("config.toml"),
        "[profiles.p]\ntoken = \"sekrit-PW123\"\n",
    )
    .unwrap();
    let out = Cmd::bare(home.path())
        .env("MOTHERDUCK_TOKEN", "t")
        .args(["run", "overview"])
        .output();
    assert_exit(&out, 2);
    assert!(
        out.stderr
            .contains("line 2, column 1: unknown field `token`"),
        "{out:?}"
    );
    assert!(!out.stderr.contains("PW123"), "{out:?}");
    std::fs::remove_file(home.path().join("config.toml")).unwrap();
    for (content, want) in [
        ("tok\nen\n", "holds more than one line"),
        ("tok\ren\n", "holds a line break"),
        ("tok en\n", "holds a space"),
        ("t\u{0}k\n", "holds a control character"),
        ("tøk\n", "holds a non-ASCII character"),
    ] {
        let file = home.path().join("t.token");
        std::fs::write(&file, content).unwrap();
        let out = Cmd::bare(home.path())
            .args(["--token-file", file.to_str().unwrap(), "run", "overview"])
            .output();
        assert_exit(&out, 2);
        assert!(
            out.stderr
                .contains(&format!("token file {}", file.display())),
            "{out:?}"
        );
        assert!(out.stderr.contains(want), "{content:?}: {out:?}");
    }
}

#[test]
fn a_byte_order_mark_never_reaches_the_header() {
    let server = Hostile::start(|_| tokens_of(j!([])));
    let home = tempfile::tempdir().unwrap();
    let file = home.path().join("t.token");
    std::fs::write(&file, format!("\u{feff}{TOKEN}\r\n")).unwrap();
    let path = home.path().join("x.rhai");
    std::fs::write(&path, "tokens::list(\"acct\").len()").unwrap();
    let out = Cmd::bare(home.path())
        .args([
            "--api-url",
            &server.url,
            "--token-file",
            file.to_str().unwrap(),
            "run",
            path.to_str().unwrap(),
        ])
        .output();
    assert_exit(&out, 0);
    assert_eq!(
        server.seen()[0].authorization.as_deref(),
        Some(format!("Bearer {TOKEN}").as_str())
    );
}

// 9. Panics and aborts from input.

#[test]
fn absurd_flags_are_usage_errors_not_panics() {
    let home = tempfile::tempdir().unwrap();
    for args in [
        ["--timeout", "18446744073709551615"],
        ["--timeout", "9223372036854775807"],
        ["--max-rps", "1e-300"],
        ["--max-rps", "NaN"],
        ["--command-timeout", "0"],
        ["--max-response-mb", "99999999"],
    ] {
        let out = Cmd::bare(home.path())
            .args(["--sandbox"])
            .args(args)
            .args(["run", "overview"])
            .output();
        assert_exit(&out, 2);
        assert!(out.stderr.starts_with("error: "), "{args:?}: {out:?}");
    }
}

#[test]
fn deeply_nested_values_are_an_error_not_a_crash() {
    let env = Env::new();
    let build = "let a = []; for i in 0..1500 { a = [a]; }";
    for (script, want) in [
        (format!("{build} a"), "error: cannot show the result: the value is nested more than 128 levels deep\n"),
        (format!("{build} print(a);"), "error: cannot print a value nested more than 128 levels deep\n"),
        (format!("{build} parallel([1], |x| {{ let b = []; for i in 0..1500 {{ b = [b]; }} print(b); 1 }})[0].error.message"), "cannot print a value nested more than 128 levels deep"),
    ] {
        let out = env.run("deep.rhai", &script, &[]);
        if want.starts_with("error:") {
            assert_exit(&out, 1);
            assert!(out.stderr.starts_with(want), "{out:?}");
        } else {
            assert_exit(&out, 4);
            assert_eq!(out.stdout.trim(), want, "{out:?}");
        }
    }
    let out = env.run("deep.rhai", &format!("{build} `${{a}}`.len() > 100"), &[]);
    assert_exit(&out, 0);
}

// 10. Locks and file modes.

#[test]
fn a_symlink_to_a_running_script_shares_its_lock() {
    let env = Env::with(
        crate::support::SEED,
        mdops::sim::Behaviour {
            faults: mdops::sim::Faults {
                hang_rate: 1.0,
                hang: Duration::from_secs(30),
                scope: Some("GET /v1/users/*/tokens".into()),
                ..Default::default()
            },
            ..Default::default()
        },
    );
    let slow = env.script("slow.rhai", "tokens::list(\"bi_tool\")");
    let link = env.home.path().join("slowlink.rhai");
    std::os::unix::fs::symlink(&slow, &link).unwrap();
    let mut c = env.mdops();
    c.cmd
        .args(["run", slow.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut first = c.cmd.spawn().unwrap();
    wait_until(
        "the first run to be in flight",
        Duration::from_secs(20),
        || !env.sim.requests().is_empty(),
    );
    let out = env.mdops().args(["run", link.to_str().unwrap()]).output();
    let _ = first.kill();
    let _ = first.wait();
    assert_exit(&out, 5);
    assert!(out.stderr.contains("another run of"), "{out:?}");
}

#[test]
fn everything_mdops_creates_in_its_data_dir_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new();
    let home = tempfile::tempdir().unwrap();
    let data = home.path().join("data");
    let script = env.script(
        "mint.rhai",
        "tokens::create(\"bi_tool\", \"m\").token.reveal(); 1",
    );
    let out = env
        .mdops()
        .args([
            "--data-dir",
            data.to_str().unwrap(),
            "run",
            script.to_str().unwrap(),
        ])
        .output();
    assert_exit(&out, 0);
    let mut checked = 0;
    let mut stack = vec![data.clone()];
    while let Some(p) = stack.pop() {
        let meta = std::fs::symlink_metadata(&p).unwrap();
        let mode = meta.permissions().mode() & 0o777;
        if meta.is_dir() {
            assert_eq!(mode, 0o700, "{}", p.display());
            stack.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        } else {
            assert_eq!(mode, 0o600, "{}", p.display());
        }
        checked += 1;
    }
    assert!(
        checked >= 5,
        "data dir, locks/, runs/, state.db, journal.key: {checked}"
    );
}

// 11. Answers that don't add up.

#[test]
fn a_create_whose_answer_does_not_decode_leaves_no_orphan() {
    let server = Hostile::start(|seen| match seen.method.as_str() {
        "POST" => json(
            200,
            j!({"token": "minted-secret-value-123456", "id": "orphan-1", "created_ts": 5}),
        ),
        "DELETE" => json(200, j!({})),
        _ => tokens_of(j!([])),
    });
    let (_h, out) = against(&server.url, "tokens::create(\"acct\", \"x\")", &[]);
    assert_exit(&out, 1);
    assert!(
        out.stderr
            .contains("the token it minted (orphan-1) was revoked"),
        "{out:?}"
    );
    assert!(!out.stderr.contains("minted-secret-value"), "{out:?}");
    let seen = server.seen();
    assert!(
        seen.iter()
            .any(|s| s.method == "DELETE" && s.path == "/v1/users/acct/tokens/orphan-1"),
        "{seen:?}"
    );
}

#[test]
fn names_with_control_characters_are_shown_escaped() {
    let server =
        Hostile::start(|_| tokens_of(j!([token("id-1", "\u{1b}[31mred\nforged line", 1)])));
    let (_h, out) = against(
        &server.url,
        "tokens::list(\"acct\").map(|t| #{name: t.name})",
        &[],
    );
    assert_exit(&out, 0);
    assert!(
        out.stdout.contains("\\u{1b}[31mred\\nforged line"),
        "{out:?}"
    );
    assert!(!out.stdout.contains('\u{1b}'));
    // print() and debug() lay text out in lines and columns, but pass no
    // terminal control sequence through (a title, a cleared screen, colours).
    let (_h, out) = against(
        &server.url,
        "let n = tokens::list(\"acct\")[0].name; print(n + \"\\t\\x07\\r!\"); debug(n);",
        &[],
    );
    assert_exit(&out, 0);
    assert!(
        out.stdout
            .starts_with("\\u{1b}[31mred\nforged line\t\\u{7}\\r!\n"),
        "{out:?}"
    );
    assert!(!out.stdout.contains('\u{1b}') && !out.stderr.contains('\u{1b}'));
    // Nor does an error a script raises with such a name in it.
    for raise in [
        "usage_error(`bad ${n}`)",
        "throw #{summary: `bad ${n}`}",
        "throw `bad ${n}`",
    ] {
        let script = format!("let n = tokens::list(\"acct\")[0].name; {raise}");
        let (_h, out) = against(&server.url, &script, &[]);
        assert!(
            out.stderr.contains("bad \\u{1b}[31mred"),
            "{raise}: {out:?}"
        );
        assert!(!out.stderr.contains('\u{1b}'), "{raise}: {out:?}");
    }
}

#[test]
fn dry_run_plan_lines_stay_off_a_csv_or_json_stdout() {
    let env = Env::new();
    for (format, parse) in [("csv", false), ("json", true)] {
        let out = env.run(
            "p.rhai",
            "tokens::revoke(\"bi_tool\", tokens::list(\"bi_tool\")[0].id); [#{a: 1}]",
            &["--dry-run", "--output", format],
        );
        assert_exit(&out, 0);
        assert!(!out.stdout.contains("[dry-run]"), "{out:?}");
        assert!(
            out.stderr.contains("[dry-run] revoke token bi_tool/"),
            "{out:?}"
        );
        if parse {
            let doc = crate::support::json_doc(&out);
            assert_eq!(doc["plan"][0]["action"], "revoke token");
        } else {
            assert_eq!(out.stdout, "a\n1\n");
        }
    }
}

#[test]
fn a_file_in_a_write_only_directory_is_delivered_without_a_false_failure() {
    use std::os::unix::fs::PermissionsExt;
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        // root reads every directory: the case cannot arise.
        return;
    }
    let env = Env::new();
    let dir = tempfile::tempdir().unwrap();
    let drop = dir.path().join("drop");
    std::fs::create_dir(&drop).unwrap();
    std::fs::set_permissions(&drop, std::fs::Permissions::from_mode(0o300)).unwrap();
    let out = env.run(
        "wo.rhai",
        &format!(
            "let t = tokens::create(\"bi_tool\", \"wo\"); secrets::to_file(\"{}/t\", t.token).sink",
            drop.display()
        ),
        &[],
    );
    std::fs::set_permissions(&drop, std::fs::Permissions::from_mode(0o700)).unwrap();
    assert_exit(&out, 0);
}

// 12. Validation gaps.

#[test]
fn durations_and_imports_are_parsed_strictly() {
    let env = Env::new();
    let out = env.run("d.rhai", "duration(\"--5\")", &[]);
    assert_exit(&out, 1);
    assert!(out.stderr.contains("invalid duration \"--5\""), "{out:?}");
    let file = env.script("inv.csv", "garbage\n");
    let out = env
        .mdops()
        .args(["inventory", "import", file.to_str().unwrap()])
        .output();
    assert_exit(&out, 2);
    assert!(
        out.stderr.contains("inv.csv:1: unknown column \"garbage\""),
        "{out:?}"
    );
    let file = env.script(
        "inv.json",
        "[{\"username\": \"ok_one\"}, {\"username\": \"\"}]",
    );
    let out = env
        .mdops()
        .args(["inventory", "import", file.to_str().unwrap()])
        .output();
    assert_exit(&out, 2);
    assert!(
        out.stderr
            .contains("inv.json:entry 2: username must not be empty (nothing was imported)"),
        "{out:?}"
    );
    let out = env.mdops().args(["inventory", "list"]).output();
    assert_eq!(out.stdout, "(none)\n");
}

// Names chosen by the least-privileged party: a service account's own token
// can mint tokens of any name in its account.

fn seed_of(accounts: &[(&str, &[&str])]) -> String {
    let mut s = "admin_token = \"test-admin-token-0123456789\"\n".to_string();
    for (name, tokens) in accounts {
        s.push_str(&format!("[[accounts]]\nusername = \"{name}\"\ntokens = ["));
        for t in *tokens {
            s.push_str(&format!(
                "{{ name = \"{t}\", age = \"100d\", ttl = \"365d\" }},"
            ));
        }
        s.push_str("]\n");
    }
    s
}

fn names(env: &Env, account: &str) -> Vec<String> {
    env.token_names(account)
}

#[test]
fn a_token_the_journal_does_not_know_is_never_revoked_as_stale() {
    let env = Env::with_seed(&seed_of(&[("etl", &["dbt.g2", "airflow"])]));
    let dir = tempfile::tempdir().unwrap();
    let sink = format!("sink_dir={}", dir.path().display());
    // A person named a token dbt.g2; it is young: nothing to do for it.
    let out = env
        .mdops()
        .args([
            "run",
            "rotate-tokens",
            "--arg",
            "accounts=etl",
            "--arg",
            "older_than=200d",
            "--arg",
            &sink,
        ])
        .output();
    assert_exit(&out, 0);
    assert_eq!(names(&env, "etl"), ["airflow", "dbt.g2"]);
    // Another data dir (a second host, another profile) sees tokens this one
    // delivered and verified, and must leave them alone.
    let out = env
        .mdops()
        .args([
            "run",
            "rotate-tokens",
            "--arg",
            "accounts=etl",
            "--arg",
            "older_than=30d",
            "--arg",
            &sink,
        ])
        .output();
    assert_exit(&out, 0);
    let rotated = names(&env, "etl");
    assert_eq!(rotated, ["airflow.g1", "dbt.g3"]);
    let other_home = tempfile::tempdir().unwrap();
    let out = env
        .mdops()
        .args([
            "--data-dir",
            other_home.path().to_str().unwrap(),
            "run",
            "rotate-tokens",
            "--arg",
            "accounts=etl",
            "--arg",
            "older_than=30d",
            "--arg",
            &sink,
        ])
        .output();
    assert_exit(&out, 0);
    assert!(
        out.stdout.contains("etl      unchanged  0       0"),
        "{out:?}"
    );
    assert_eq!(
        names(&env, "etl"),
        rotated,
        "nothing revoked from another data dir"
    );
}

#[test]
fn a_token_name_cannot_reach_a_command_as_a_path_or_an_option() {
    let env = Env::with_seed(&seed_of(&[
        ("tenant_a", &["../tenant_b/app"]),
        ("tenant_b", &["app"]),
        ("tenant_c", &["--all"]),
    ]));
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("vault/tenant_b")).unwrap();
    std::fs::create_dir_all(dir.path().join("vault/tenant_a")).unwrap();
    std::fs::create_dir_all(dir.path().join("vault/tenant_c")).unwrap();
    let out = env
        .mdops()
        .args([
            "run",
            "rotate-tokens",
            "--arg",
            "accounts=all",
            "--arg",
            "older_than=30d",
            "--arg",
            "sink=command",
            "--arg",
            &format!(
                "sink_command=tee {}/vault/{{account}}/{{name}} >/dev/null",
                dir.path().display()
            ),
        ])
        .output();
    assert_exit(&out, 4);
    assert!(
        out.stdout
            .contains("cannot go into a command: only a plain word can"),
        "{out:?}"
    );
    let b = env.org().users["tenant_b"].tokens[0].secret.clone();
    assert_eq!(
        std::fs::read_to_string(dir.path().join("vault/tenant_b/app")).unwrap(),
        format!("{b}\n"),
        "tenant_b holds its own token"
    );
    assert_eq!(
        names(&env, "tenant_a"),
        ["../tenant_b/app"],
        "nothing of tenant_a was minted"
    );
    assert_eq!(names(&env, "tenant_c"), ["--all"]);
}

#[test]
fn env_keys_of_two_accounts_never_overwrite_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("app.env");
    let env_file = format!("env_file={}", file.display());
    // In one run: refused before anything is minted.
    let env = Env::with_seed(&seed_of(&[
        ("tenant_a", &["app", "web"]),
        ("tenant_a_app", &["main"]),
    ]));
    let out = env
        .mdops()
        .args([
            "run",
            "rotate-tokens",
            "--arg",
            "accounts=all",
            "--arg",
            "older_than=30d",
            "--arg",
            "sink=env-file",
            "--arg",
            &env_file,
        ])
        .output();
    assert_exit(&out, 2);
    assert!(
        out.stderr.contains("would both go to env-file:")
            && out.stderr.contains("MOTHERDUCK_TOKEN_TENANT_A_APP"),
        "{out:?}"
    );
    assert!(env.sim.writes().is_empty());
    // Across runs: the key belongs to the group that received it first.
    let out = env
        .mdops()
        .args([
            "run",
            "rotate-tokens",
            "--arg",
            "accounts=tenant_a_app",
            "--arg",
            "older_than=30d",
            "--arg",
            "sink=env-file",
            "--arg",
            &env_file,
        ])
        .output();
    assert_exit(&out, 0);
    let held = std::fs::read_to_string(&file).unwrap();
    let out = env
        .mdops()
        .args([
            "run",
            "rotate-tokens",
            "--arg",
            "accounts=tenant_a",
            "--arg",
            "older_than=30d",
            "--arg",
            "sink=env-file",
            "--arg",
            &env_file,
        ])
        .output();
    assert_exit(&out, 4);
    assert!(
        out.stdout.contains("holds the token of tenant_a_app/main"),
        "{out:?}"
    );
    assert!(std::fs::read_to_string(&file).unwrap().contains(
        held.lines()
            .find(|l| l.starts_with("MOTHERDUCK_TOKEN_TENANT_A_APP="))
            .unwrap()
    ));
    assert_eq!(
        names(&env, "tenant_a"),
        ["app", "web.g1"],
        "its other group went on; app kept its old token"
    );
}

#[test]
fn two_names_that_differ_get_two_files() {
    let env = Env::with_seed(&seed_of(&[
        ("tenant_z", &["app x", "app_x"]),
        ("victim_org", &["prod"]),
    ]));
    let dir = tempfile::tempdir().unwrap();
    let out = env
        .mdops()
        .args([
            "run",
            "rotate-tokens",
            "--arg",
            "accounts=all",
            "--arg",
            "older_than=30d",
            "--arg",
            &format!("sink_dir={}", dir.path().display()),
        ])
        .output();
    assert_exit(&out, 0);
    assert!(dir.path().join("tenant_z/app%20x.token").is_file());
    assert!(dir.path().join("tenant_z/app_x.token").is_file());
    assert_eq!(names(&env, "victim_org"), ["prod.g1"]);
}

#[test]
fn a_token_is_trusted_only_after_every_check_passed() {
    let env = Env::with_seed(&seed_of(&[("etl", &["airflow"])]));
    let dir = tempfile::tempdir().unwrap();
    let ready = dir.path().join("verifying");
    let sink = format!("sink_dir={}", dir.path().display());
    let mut c = env.mdops();
    c.cmd
        .args([
            "run",
            "rotate-tokens",
            "--arg",
            "accounts=etl",
            "--arg",
            "older_than=30d",
            "--arg",
            &sink,
            "--arg",
            &format!("verify_command=touch {}; sleep 30", ready.display()),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let child = c.cmd.spawn().unwrap();
    wait_until("the verify command to run", Duration::from_secs(20), || {
        ready.exists()
    });
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(143));
    // The next run's verification fails: the half-verified g1 must not have
    // been trusted, so the known-good token is still there.
    let out = env
        .mdops()
        .args([
            "run",
            "rotate-tokens",
            "--arg",
            "accounts=etl",
            "--arg",
            "older_than=30d",
            "--arg",
            &sink,
            "--arg",
            "verify_command=false",
        ])
        .output();
    assert_exit(&out, 4);
    // g1 was not trusted as current: a g2 was tried (and failed its check).
    assert!(
        out.stdout.contains("verify command failed (exit 1)"),
        "{out:?}"
    );
    assert!(
        names(&env, "etl").contains(&"airflow".to_string()),
        "the known-good token is kept: {:?}",
        names(&env, "etl")
    );
    assert!(!names(&env, "etl").contains(&"airflow.g2".to_string()));
}

#[test]
fn commands_never_inherit_the_admin_token() {
    let env = Env::new();
    let out = env
        .mdops()
        .env("MOTHERDUCK_TOKEN", "inherited-token-value-000111222")
        .args(["run", env.script("e.rhai", "sh(\"printenv MOTHERDUCK_TOKEN MOTHERDUCK_ADMIN_TOKEN motherduck_token || echo none\").stdout").to_str().unwrap()])
        .output();
    assert_exit(&out, 0);
    assert_eq!(out.stdout, "none\\n\n");
}

#[test]
fn a_link_planted_at_a_sink_is_refused_and_its_target_untouched() {
    let env = Env::with_seed(&seed_of(&[("etl", &["airflow"])]));
    let dir = tempfile::tempdir().unwrap();
    let outside = dir.path().join("outside.txt");
    std::fs::write(&outside, "line one\nline two\n").unwrap();
    std::fs::create_dir(dir.path().join("etl")).unwrap();
    std::os::unix::fs::symlink(&outside, dir.path().join("etl/airflow.token")).unwrap();
    let out = env
        .mdops()
        .args([
            "run",
            "rotate-tokens",
            "--arg",
            "accounts=etl",
            "--arg",
            "older_than=30d",
            "--arg",
            &format!("sink_dir={}", dir.path().display()),
        ])
        .output();
    // Found before anything is minted.
    assert_exit(&out, 2);
    assert!(out.stderr.contains("is a symbolic link"), "{out:?}");
    assert_eq!(
        std::fs::read_to_string(&outside).unwrap(),
        "line one\nline two\n"
    );
    assert_eq!(names(&env, "etl"), ["airflow"]);
    assert!(env.sim.writes().is_empty());
}

#[test]
fn a_locked_sink_directory_gives_up_in_time() {
    let env = Env::with_seed(&seed_of(&[("etl", &["airflow"])]));
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("etl")).unwrap();
    let held = std::fs::File::open(dir.path().join("etl")).unwrap();
    held.lock().unwrap();
    let started = Instant::now();
    let out = env
        .mdops()
        .args([
            "--command-timeout",
            "1",
            "run",
            "rotate-tokens",
            "--arg",
            "accounts=etl",
            "--arg",
            "older_than=30d",
            "--arg",
            &format!("sink_dir={}", dir.path().display()),
        ])
        .output();
    assert_exit(&out, 4);
    assert!(started.elapsed() < Duration::from_secs(15));
    assert!(
        out.stdout
            .contains("stayed locked by another writer for 1s; nothing was written"),
        "{out:?}"
    );
    assert_eq!(
        names(&env, "etl"),
        ["airflow"],
        "the new token was revoked again"
    );
}

#[test]
fn a_command_sink_that_cannot_be_undone_says_so() {
    let env = Env::with_seed(&seed_of(&[("etl", &["airflow"])]));
    let out = env
        .mdops()
        .args([
            "run",
            "rotate-tokens",
            "--arg",
            "accounts=etl",
            "--arg",
            "older_than=30d",
            "--arg",
            "sink=command",
            "--arg",
            "sink_command=cat >/dev/null",
            "--arg",
            "verify_command=false",
        ])
        .output();
    assert_exit(&out, 4);
    assert!(
        out.stdout.contains("etl      failed  1       1"),
        "minted and revoked: {out:?}"
    );
    assert!(
        out.stdout.contains("the sink command cannot be undone"),
        "{out:?}"
    );
}

#[test]
fn a_variable_that_changes_how_commands_run_cannot_carry_a_token() {
    let env = Env::new();
    for var in [
        "PATH",
        "LD_PRELOAD",
        "1X",
        "PYTHONPATH",
        "NODE_OPTIONS",
        "PERL5OPT",
        "GIT_SSH_COMMAND",
        "PROMPT_COMMAND",
        "SSL_CERT_FILE",
        "BASH_FUNC_x",
    ] {
        let out = env
            .mdops()
            .args([
                "run",
                "rotate-tokens",
                "--arg",
                "accounts=all",
                "--arg",
                "sink_dir=.",
                "--arg",
                &format!("verify_env={var}"),
            ])
            .output();
        assert_exit(&out, 2);
        assert!(
            out.stderr.contains("argument verify_env="),
            "{var}: {out:?}"
        );
    }
    assert!(env.sim.requests().is_empty());
}

#[test]
fn a_known_secret_read_back_from_a_file_is_not_printed() {
    let env = Env::new();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("t");
    let out = env.run(
        "readback.rhai",
        &format!(
            "let a = tokens::create(\"bi_tool\", \"a\"); secrets::to_file(\"{f}\", a.token); print(read_text(\"{f}\"));\n\
             let b = tokens::create(\"bi_tool\", \"b\"); print(b.token.reveal());",
            f = file.display()
        ),
        &[],
    );
    assert_exit(&out, 0);
    let org = env.org();
    let secret = |n: &str| {
        org.users["bi_tool"]
            .tokens
            .iter()
            .find(|t| t.name == n)
            .unwrap()
            .secret
            .clone()
    };
    assert!(!out.stdout.contains(&secret("a")), "{out:?}");
    assert!(out.stdout.contains("<secret "), "{out:?}");
    assert!(
        out.stdout.contains(&secret("b")),
        "what the script revealed, it may print"
    );
}

/// The admin token is a known secret from the moment it is read, not from
/// the first request: a script that prints the token file before any call
/// shows a fingerprint.
#[test]
fn the_admin_token_is_redacted_before_the_first_request() {
    let env = Env::new();
    let out = env
        .rhai(
            "early.rhai",
            &format!(
                "print(read_text(\"{}\")); let r = sh([\"cat\", \"{}\"]); print(r.stdout);",
                env.token_file.display(),
                env.token_file.display()
            ),
        )
        .any_stdout()
        .run();
    assert!(!out.stdout.contains(crate::support::ADMIN), "{out:?}");
    assert_eq!(out.stdout.matches("<secret ").count(), 2, "{out:?}");
    assert!(env.sim.requests().is_empty(), "no request was made");
}

/// A script's declaration cannot be one nobody can satisfy or pass.
#[test]
fn declarations_that_cannot_work_are_refused() {
    let env = Env::new();
    for (decl, why) in [
        (
            r#"#{"a=b": #{type: "string", doc: "x"}}"#,
            "cannot be given as --arg NAME=VALUE",
        ),
        (
            "#{\"\u{0430}ccounts\": #{type: \"string\", doc: \"x\"}}",
            "use ASCII letters",
        ),
        (
            r#"#{n: #{type: "int", min: 10, max: 1, doc: "x"}}"#,
            "min is above max",
        ),
        (
            r#"#{e: #{type: "enum", values: [], doc: "x"}}"#,
            "values must be non-empty",
        ),
    ] {
        env.rhai("d.rhai", &format!("let p = params({decl});"))
            .status(1)
            .stderr_has(&["invalid parameter declaration", why])
            .run();
    }
    env.rhai(
        "nested.rhai",
        "let p = params(#{x: #{type: \"string\", doc: \"x\"}});\nfn later() { params(#{y: #{type: \"string\", doc: \"y\"}}) }\nlater()",
    )
    .status(1)
    .stderr_has(&["params() is called once, at the top level", "nested.rhai:2:14"])
    .run();
    env.rhai(
        "list.rhai",
        "let p = params(#{l: #{type: \"list\", required: true, doc: \"x\"}}); p.l",
    )
    .args(["--arg", "l=,"])
    .status(2)
    .stderr_has(&["\",\" has an empty item"])
    .run();
    // A page for a script that does not compile is its error, not a blank page.
    let broken = env.script("broken.rhai", "//! Broken.\nlet = ;\n");
    env.mdops()
        .args(["doc", broken.to_str().unwrap()])
        .status(1)
        .stderr_has(&["syntax error", "broken.rhai:2:"])
        .run();
    // Nor can a script's text drive the reader's terminal, in a page or an error.
    let bad = env.script(
        "bad.rhai",
        "let x = \"\u{1b}]0;pwned\u{7}\" + nosuchfn();\n",
    );
    let out = env
        .mdops()
        .args(["check", bad.to_str().unwrap()])
        .status(1)
        .stderr_has(&["unknown function: nosuchfn"])
        .run();
    assert!(!out.stderr.contains('\u{1b}'), "{out:?}");
    assert!(out.stderr.contains("\\u{1b}]0;pwned\\u{7}"), "{out:?}");
    let esc = env.script("esc.rhai", "//! Title \u{1b}]0;pwned\u{7}\nlet x = 1;\n");
    env.mdops()
        .args(["doc", esc.to_str().unwrap()])
        .stdout("Title \\u{1b}]0;pwned\\u{7}\n")
        .run();
    assert!(env.sim.requests().is_empty());
}
