use crate::support::{assert_exit, json_doc, json_result, Cmd, Env};
use std::io::{BufRead, BufReader};
use std::process::Stdio;

#[test]
fn sandbox_overview_runs_from_nothing() {
    let home = tempfile::tempdir().unwrap();
    let out = Cmd::bare(home.path())
        .args(["--sandbox", "run", "overview"])
        .output();
    assert_exit(&out, 0);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines[0],
        "username       tokens  never_expire  next_expiry  oldest  read_write             read_scaling  running"
    );
    assert!(lines[1].starts_with("-------------  ------"));
    assert_eq!(lines.len(), 7, "{out:?}");
    assert_eq!(
        lines[3],
        "etl_pipeline   2       1             in 69d       400d    jumbo, cooldown 5m     2 x standard  1"
    );
    assert_eq!(out.stderr, "");
}

#[test]
fn json_output_is_one_document() {
    let home = tempfile::tempdir().unwrap();
    let out = Cmd::bare(home.path())
        .args(["--sandbox", "run", "overview", "--output", "json"])
        .output();
    assert_exit(&out, 0);
    let doc = json_result(&out);
    let rows = doc.as_array().unwrap();
    assert_eq!(rows.len(), 5);
    let keys: Vec<&String> = rows[0].as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "username",
            "tokens",
            "never_expire",
            "next_expiry",
            "oldest",
            "read_write",
            "read_scaling",
            "running"
        ]
    );
    assert_eq!(rows[1]["username"], "etl_pipeline");
    assert_eq!(rows[1]["tokens"], 2);
    // Raw values: seconds, RFC 3339 times, configuration maps.
    assert_eq!(rows[1]["oldest"], 400 * 86400);
    assert!(
        chrono::DateTime::parse_from_rfc3339(rows[1]["next_expiry"].as_str().unwrap()).is_ok(),
        "{}",
        rows[1]
    );
    assert_eq!(
        rows[1]["read_write"],
        serde_json::json!({"instance_size": "jumbo", "cooldown_seconds": 300})
    );
    assert_eq!(rows[2]["next_expiry"], serde_json::Value::Null, "never");
    // CSV: the same raw values, a configuration split into one column per key.
    let out = Cmd::bare(home.path())
        .args(["--sandbox", "run", "overview", "--output", "csv"])
        .output();
    assert_exit(&out, 0);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines[0],
        "username,tokens,never_expire,next_expiry,oldest,read_write.cooldown_seconds,\
         read_write.instance_size,read_scaling.cooldown_seconds,read_scaling.flock_size,\
         read_scaling.instance_size,running"
    );
    assert!(lines[2].starts_with("etl_pipeline,2,1,20"), "{}", lines[2]);
    assert!(
        lines[2].ends_with(",34560000,300,jumbo,120,2,standard,1"),
        "{}",
        lines[2]
    );
}

#[test]
fn json_output_keeps_print_off_stdout_and_reports_errors_as_json() {
    let env = Env::new();
    let out = env.run(
        "p.rhai",
        "print(\"chatter\");\nlet t = tokens::create(\"bi_tool\", \"j\");\nt.token.reveal();\n#{ok: true, secret: t.token}",
        &["--output", "json"],
    );
    assert_exit(&out, 0);
    let doc = json_result(&out);
    assert_eq!(doc["ok"], true);
    assert!(doc["secret"].as_str().unwrap().starts_with("<secret "));
    assert_eq!(out.stderr, "chatter\n");
    let out = env.run("e.rhai", "\n  throw \"nope\";", &["--output", "json"]);
    assert_exit(&out, 1);
    let doc = json_doc(&out);
    assert_eq!(doc["result"], serde_json::Value::Null);
    assert_eq!(
        doc["error"],
        serde_json::json!({"message": "uncaught exception: nope", "location": {"file": "e.rhai", "line": 2, "column": 3}, "exit_code": 1, "kind": "script"})
    );
    // Failures before the script runs are documents too.
    let out = env
        .mdops()
        .args(["run", "overview", "--output", "json", "--arg", "x=1"])
        .output();
    assert_exit(&out, 2);
    let doc = json_doc(&out);
    assert_eq!(doc["error"]["kind"], "usage");
    assert_eq!(
        doc["error"]["message"],
        "invalid arguments for scripts/overview.rhai: unknown argument x; this script takes no arguments"
    );
}

#[test]
fn args_durations_and_exit_codes() {
    let env = Env::new();
    let script = r#"
        fn limit() { arg("limit", 5) }
        print(arg("who"));
        print(limit() + 1);
        print(arg("dry", false));
        print(arg("names", []));
        print(arg("absent", "fallback"));
        print(duration("1h30m"));
        print(now() > 1700000000);
        exit(4);
    "#;
    env.rhai("args.rhai", script)
        .args([
            "--arg",
            "who=ops team",
            "--arg",
            "limit=41",
            "--arg",
            "dry=yes",
            "--arg",
            "names=a, b,c",
        ])
        .status(4)
        .stdout("ops team\n42\ntrue\n[\"a\", \"b\", \"c\"]\nfallback\n5400\ntrue\n")
        .run();
    env.rhai("args.rhai", "arg(\"limit\", 5)")
        .args(["--arg", "limit=many"])
        .status(1)
        .stderr_has(&["error: invalid limit: argument limit=\"many\" is not an integer\n"])
        .run();
    env.rhai("args.rhai", "arg(\"who\")")
        .status(1)
        .stderr_has(&["error: invalid who: missing argument who: pass --arg who=VALUE\n"])
        .run();
    env.mdops()
        .args(["run", "overview", "--arg", "novalue"])
        .status(2)
        .stderr_has(&["novalue"])
        .run();
}

#[test]
fn check_reports_ok_and_errors() {
    let env = Env::new();
    let good = env.script(
        "good.rhai",
        "#!/usr/bin/env mdops\nlet x = tokens::list(\"a\");\n",
    );
    Cmd::bare(env.home.path())
        .args(["check", good.to_str().unwrap()])
        .stdout(&format!("{}: ok\n", good.display()))
        .run();
    Cmd::bare(env.home.path())
        .args(["check", "overview"])
        .stdout("scripts/overview.rhai: ok\n")
        .run();
    let bad = env.script("bad.rhai", "let x = ducklings::gte(\"a\");\n");
    Cmd::bare(env.home.path())
        .args(["check", bad.to_str().unwrap()])
        .status(1)
        .stderr_has(&["bad.rhai:1:", "did you mean `ducklings::get`?"])
        .run();
    // Every problem in one pass, each with its position: argument counts,
    // unknown functions (plain, namespaced, of an imported module), and an
    // unknown namespace that is not called a syntax error.
    let many = env.script(
        "many.rhai",
        "import \"rotation\" as rotation;\nlet x = tokens::create(\"a\");\nlet y = frobnicate(2);\nrotation::plann(1, 2, 3);\nrotation::plan(1);\n",
    );
    let out = Cmd::bare(env.home.path())
        .args(["check", many.to_str().unwrap()])
        .status(1)
        .stderr_has(&[
            "error: tokens::create takes 2 arguments, not 1\n  --> ",
            "many.rhai:2:17",
            "error: unknown function: frobnicate\n",
            "many.rhai:3:9",
            "error: unknown function: rotation::plann\n",
            "= help: did you mean `rotation::plan`?",
            "error: rotation::plan takes 3 arguments, not 1\n",
            "many.rhai: 4 problems\n",
        ])
        .run();
    assert!(!out.stderr.contains("syntax error"));
    let ns = env.script("ns.rhai", "let x = tokns::list(\"a\");\n");
    Cmd::bare(env.home.path())
        .args(["check", ns.to_str().unwrap()])
        .status(1)
        .stderr_has(&[
            "error: unknown namespace `tokns`",
            "ns.rhai:1:9",
            "the namespaces are accounts, tokens",
        ])
        .run();
    Cmd::bare(env.home.path())
        .args(["check", "no-such-thing"])
        .status(2)
        .stderr("error: no script file \"no-such-thing\" and no bundled workflow of that name (see `mdops scripts`)\n")
        .run();
    assert!(env.sim.requests().is_empty());
}

/// The harness itself: an expectation left unsaid means "empty" / exit 0, and
/// a mismatch anywhere fails the test.
#[test]
fn the_harness_checks_status_stdout_and_stderr_together() {
    let env = Env::new();
    env.rhai("quiet.rhai", "let x = 1;").run();
    let fails = |cmd: Cmd| {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            cmd.run();
        }))
        .is_err()
    };
    assert!(
        fails(env.rhai("p.rhai", "print(\"hi\")")),
        "unexpected stdout"
    );
    assert!(fails(env.rhai("e.rhai", "exit(3)")), "unexpected status");
    assert!(
        fails(env.rhai("t.rhai", "throw \"x\"").status(1)),
        "unexpected stderr"
    );
    assert!(fails(
        env.rhai("o.rhai", "print(\"b\"); print(\"a\")")
            .stdout_has(&["a", "b"])
    ));
    env.rhai("o.rhai", "print(\"b\"); print(\"a\")")
        .stdout_has(&["b", "a"])
        .run();
}

#[test]
fn doc_and_scripts_list_what_exists() {
    let home = tempfile::tempdir().unwrap();
    let out = Cmd::bare(home.path())
        .args(["doc", "tokens::create"])
        .output();
    assert_exit(&out, 0);
    assert!(
        out.stdout.starts_with(
            "tokens::create(username: string, name: string) -> map\n    Mints a read/write token"
        ),
        "{out:?}"
    );
    assert!(out
        .stdout
        .contains("tokens::create(username: string, options: map) -> map\n"));
    let out = Cmd::bare(home.path()).args(["doc"]).output();
    assert_exit(&out, 0);
    for f in [
        "accounts::create",
        "accounts::delete",
        "accounts::exists",
        "accounts::list",
        "accounts::active",
        "tokens::list",
        "tokens::create",
        "tokens::revoke",
        "tokens::verify",
        "ducklings::get",
        "ducklings::set",
        "ducklings::update",
        "dives::embed_session",
        "arg",
        "duration",
        "now",
        "confirm",
        "parallel",
        "reveal",
        "fingerprint",
        "table",
    ] {
        assert!(
            out.stdout.contains(&format!("\n{f}(")) || out.stdout.starts_with(&format!("{f}(")),
            "doc lacks {f}"
        );
    }
    // Every documented entry has a description under its signature.
    for block in out.stdout.split("\n\n").filter(|b| !b.is_empty()) {
        assert!(
            block
                .lines()
                .nth(1)
                .is_some_and(|l| l.starts_with("    ") && l.len() > 8),
            "undocumented: {block}"
        );
    }
    let out = Cmd::bare(home.path()).args(["doc", "tokens::lst"]).output();
    assert_exit(&out, 2);
    assert_eq!(out.stderr, "error: no function, namespace or workflow named \"tokens::lst\" (did you mean `tokens::list`?)\n");
    let out = Cmd::bare(home.path()).args(["scripts"]).output();
    assert_exit(&out, 0);
    let names: Vec<&str> = out
        .stdout
        .lines()
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "audit-report",
            "cleanup-tokens",
            "offboard-account",
            "overview",
            "provision-account",
            "reconcile-inventory",
            "rotate-tokens",
            "set-ducklings"
        ]
    );
    assert!(
        out.stdout
            .contains("\noverview             Overview of the organization's service accounts"),
        "{out:?}"
    );
    // Each workflow documents its arguments and an example.
    for name in names {
        let out = Cmd::bare(home.path()).args(["doc", name]).output();
        assert_exit(&out, 0);
        assert!(out.stdout.contains("Example:"), "{name} has no example");
    }
    // A script of one's own: the page the run's "unknown argument" help points to.
    let script = home.path().join("mine.rhai");
    std::fs::write(
        &script,
        "//! Refresh one account's token.\n\
         let p = params(#{account: #{type: \"account\", required: true, doc: \"the account\"}});\n",
    )
    .unwrap();
    let out = Cmd::bare(home.path())
        .args(["doc", script.to_str().unwrap()])
        .output();
    assert_exit(&out, 0);
    assert_eq!(
        out.stdout,
        "Refresh one account's token.\n\nParameters (--arg NAME=VALUE):\n  account  account, required  the account\n"
    );
    let out = Cmd::bare(home.path())
        .args(["doc", "./missing.rhai"])
        .output();
    assert_exit(&out, 2);
    assert!(out.stderr.contains("no script file"), "{out:?}");
}

#[test]
fn sim_command_serves_on_loopback() {
    let home = tempfile::tempdir().unwrap();
    let token_out = home.path().join("sim.token");
    let mut child = Cmd::bare(home.path())
        .args([
            "sim",
            "--port",
            "0",
            "--token-out",
            token_out.to_str().unwrap(),
        ])
        .cmd
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    reader.read_line(&mut first).unwrap();
    let url = first.trim().rsplit(' ').next().unwrap().to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{first}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&token_out).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let out = Cmd::bare(home.path())
        .args([
            "--api-url",
            &url,
            "--token-file",
            token_out.to_str().unwrap(),
            "run",
            "overview",
        ])
        .output();
    let _ = child.kill();
    let _ = child.wait();
    assert_exit(&out, 0);
    assert!(out.stdout.contains("etl_pipeline"));
}

#[test]
fn seed_files_load_as_json_too() {
    let home = tempfile::tempdir().unwrap();
    let bad = home.path().join("bad.json");
    std::fs::write(&bad, r#"{"accounts": [{"username": "x-y"}]}"#).unwrap();
    let out = Cmd::bare(home.path())
        .args(["sim", "--seed", bad.to_str().unwrap()])
        .output();
    assert_exit(&out, 2);
    assert!(
        out.stderr.contains("username \"x-y\" contains '-'"),
        "{out:?}"
    );
    let good = mdops::sim::seed::parse(
        r#"{"accounts": [{"username": "json_one", "tokens": [{"name": "a", "ttl": "1d"}]}]}"#,
        "json",
    )
    .unwrap();
    assert_eq!(good.accounts[0].username, "json_one");
}

#[test]
fn eval_runs_an_expression_like_run_runs_a_script() {
    let env = Env::new();
    env.mdops()
        .args(["eval", "accounts::list().len()"])
        .stdout("2\n")
        .run();
    env.mdops()
        .args([
            "eval",
            "let n = arg(\"n\").parse_int(); n * 2",
            "--arg",
            "n=21",
        ])
        .stdout("42\n")
        .run();
    let out = env
        .mdops()
        .args([
            "eval",
            "tokens::list(\"bi_tool\").map(|t| t.name)",
            "--output",
            "json",
        ])
        .any_stdout()
        .run();
    assert_eq!(json_result(&out), serde_json::json!(["looker"]));
    // A dry run plans; an error has the script position of the expression.
    env.mdops()
        .args(["eval", "accounts::create(\"planned\")", "--dry-run"])
        .stdout_has(&["[dry-run] create account planned\n", "username  planned\n"])
        .run();
    env.mdops()
        .args(["eval", "tokens::list(\"ghost_account\")"])
        .status(1)
        .stderr_has(&["User ghost_account not found", "--> <eval>:1:"])
        .run();
    env.mdops()
        .args(["eval", "  "])
        .status(2)
        .stderr_has(&["nothing to evaluate"])
        .run();
    assert!(env.sim.writes().is_empty());
}

#[test]
fn whoami_says_where_things_come_from_and_checks_the_token() {
    let env = Env::new();
    let out = env.mdops().args(["whoami"]).any_stdout().run();
    assert!(
        out.stdout.contains(&format!(
            "token_from  --token-file {}\n",
            env.token_file.display()
        )),
        "{out:?}"
    );
    assert!(
        out.stdout
            .contains(&format!("api_url     {}", env.sim.url())),
        "{out:?}"
    );
    assert!(
        out.stdout
            .contains("accepted    true\nadmin       true\nuser_list   true\n"),
        "{out:?}"
    );
    assert!(
        !out.stdout.contains(crate::support::ADMIN),
        "never the token"
    );
    assert!(out.stdout.contains("token       <secret "), "{out:?}");
    // A service account's own token authenticates but is no admin: exit 3.
    let own = env.home.path().join("own.token");
    std::fs::write(&own, "etl-secret-airflow-000000000000\n").unwrap();
    let out = env
        .mdops()
        .args([
            "whoami",
            "--output",
            "json",
            "--token-file",
            own.to_str().unwrap(),
        ])
        .status(3)
        .any_stdout()
        .stderr_has(&["403"])
        .run();
    let doc = json_doc(&out);
    assert_eq!(doc["result"]["accepted"], true);
    assert_eq!(doc["result"]["admin"], false);
    assert!(!out.stdout.contains("etl-secret-airflow"));
    // A refused token: exit 3, and nothing of it printed.
    std::fs::write(&own, "not-a-token-of-this-org-000000\n").unwrap();
    let out = env
        .mdops()
        .args(["whoami", "--token-file", own.to_str().unwrap()])
        .status(3)
        .any_stdout()
        .stderr_has(&["401"])
        .run();
    assert!(out.stdout.contains("accepted    false\n"), "{out:?}");
    assert!(!out.stdout.contains("not-a-token") && !out.stderr.contains("not-a-token"));
    // No token at all: a usage error that says how to give one.
    Cmd::bare(env.home.path())
        .args(["whoami"])
        .status(2)
        .any_stdout()
        .stderr_has(&["no admin token"])
        .run();
}

#[test]
fn completions_and_the_manual_are_generated() {
    let home = tempfile::tempdir().unwrap();
    for (shell, mark) in [
        ("bash", "_mdops()"),
        ("zsh", "#compdef mdops"),
        ("fish", "complete -c mdops"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let out = Cmd::bare(home.path())
            .args(["completions", shell])
            .any_stdout()
            .run();
        assert!(
            out.stdout.contains(mark),
            "{shell}: {}",
            &out.stdout[..200.min(out.stdout.len())]
        );
        assert!(
            out.stdout.contains("rotate") || out.stdout.contains("whoami"),
            "{shell}"
        );
    }
    Cmd::bare(home.path())
        .args(["completions", "tcsh"])
        .status(2)
        .stderr_has(&["invalid value 'tcsh'"])
        .run();
    let out = Cmd::bare(home.path()).args(["man"]).any_stdout().run();
    assert!(out.stdout.contains(".TH mdops 1"), "{}", &out.stdout[..300]);
    for section in [
        ".SH \"MDOPS RUN\"",
        ".SH \"MDOPS WHOAMI\"",
        "\\-\\-max\\-writes",
    ] {
        assert!(out.stdout.contains(section), "lacks {section}");
    }
}

#[test]
fn authoring_tools_document_modules_builtins_and_write_definitions() {
    let home = tempfile::tempdir().unwrap();
    let cmd = || Cmd::bare(home.path());
    // A bundled module: its description, how to import it, each function.
    let out = cmd().args(["doc", "rotation"]).any_stdout().run();
    assert!(out
        .stdout
        .starts_with("Token rotation that survives being interrupted."));
    assert!(out
        .stdout
        .contains("Import with `import \"rotation\" as rotation;`"));
    assert!(
        out.stdout
            .contains("\nrotation::plan(account, o, force)\n    What rotating `account` involves"),
        "{}",
        out.stdout
    );
    // Rhai's own functions, when no function of ours has the name.
    cmd()
        .args(["doc", "parse_json"])
        .stdout_has(&[
            "(Rhai's standard library)",
            "parse_json(json: string) -> any\n    Parse a JSON string",
        ])
        .run();
    cmd()
        .args(["doc", "splt"])
        .status(2)
        .stderr_has(&["did you mean `split`?"])
        .run();
    // Definition files for the language server, with doc comments and clean types.
    let defs = home.path().join("defs");
    cmd()
        .args(["doc", "--definitions", defs.to_str().unwrap()])
        .stdout_has(&["wrote to ", "Rhai.toml", "rotation.d.rhai", "tokens.d.rhai"])
        .run();
    let tokens = std::fs::read_to_string(defs.join("tokens.d.rhai")).unwrap();
    assert!(tokens.starts_with("module tokens;"), "{tokens}");
    assert!(
        tokens.contains("/// Mints a token with options"),
        "{tokens}"
    );
    assert!(
        tokens.contains("fn create(username: string, options: map) -> Map;"),
        "{tokens}"
    );
    let rotation = std::fs::read_to_string(defs.join("rotation.d.rhai")).unwrap();
    assert!(
        rotation.contains("fn plan(account: ?, o: ?, force: ?) -> ?;"),
        "{rotation}"
    );
    let config = std::fs::read_to_string(defs.join("Rhai.toml")).unwrap();
    assert!(
        config.contains("[source]\ninclude = [\"**/*.rhai\"]"),
        "{config}"
    );
}

#[test]
fn a_bundled_workflow_can_be_shown_and_ejected_to_start_from() {
    let env = Env::new();
    let out = env
        .mdops()
        .args(["scripts", "show", "overview"])
        .any_stdout()
        .run();
    assert!(out
        .stdout
        .starts_with("//! Overview of the organization's service accounts"));
    let dir = env.home.path().join("mine");
    std::fs::create_dir(&dir).unwrap();
    env.mdops()
        .args(["scripts", "eject", "overview", dir.to_str().unwrap()])
        .stdout_has(&["wrote ", "mine/overview.rhai"])
        .run();
    let copy = dir.join("overview.rhai");
    assert_eq!(std::fs::read_to_string(&copy).unwrap(), out.stdout);
    // The copy runs as the original does: its imports find the bundled modules.
    env.mdops()
        .args(["run", copy.to_str().unwrap()])
        .stdout_has(&["username      tokens", "etl_pipeline"])
        .run();
    // Never overwritten; an unknown name says what exists.
    env.mdops()
        .args(["scripts", "eject", "overview", dir.to_str().unwrap()])
        .status(2)
        .stderr_has(&["it exists (mdops never overwrites it)"])
        .run();
    env.mdops()
        .args(["scripts", "show", "overveiw"])
        .status(2)
        .stderr_has(&["did you mean `overview`?"])
        .run();
}
