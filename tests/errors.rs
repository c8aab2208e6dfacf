//! What a person sees when something goes wrong: whole texts and exit codes.

use crate::support::raw::{dead_url, RawServer};
use crate::support::{assert_exit, Cmd, Env};

#[test]
fn syntax_error_shows_position_and_caret() {
    let env = Env::new();
    let out = env.run("bad.rhai", "let x = 1;\nlet y = [1, 2;\nprint(y);\n", &[]);
    assert_exit(&out, 1);
    assert_eq!(out.stdout, "");
    assert_eq!(
        out.stderr,
        "error: syntax error: Expecting ',' to separate the items of this array literal\n  --> bad.rhai:2:14\n   |\n 2 | let y = [1, 2;\n   |              ^\n"
    );
    assert!(env.sim.requests().is_empty());
}

#[test]
fn unknown_function_suggests_the_closest_before_anything_runs() {
    let env = Env::new();
    let out = env.run(
        "typo.rhai",
        "accounts::create(\"never_made\");\nlet t = tokens::lst(\"bi_tool\");\n",
        &[],
    );
    assert_exit(&out, 1);
    assert_eq!(
        out.stderr,
        "error: unknown function: tokens::lst\n  --> typo.rhai:2:17\n   |\n 2 | let t = tokens::lst(\"bi_tool\");\n   |                 ^\n  = help: did you mean `tokens::list`?\n"
    );
    assert!(
        env.sim.requests().is_empty(),
        "nothing ran, nothing was created"
    );
}

#[test]
fn unknown_function_as_a_statement_is_caught_before_running_too() {
    let env = Env::new();
    let out = env.run(
        "typo.rhai",
        "accounts::create(\"never_made\");\ntokens::revok(\"bi_tool\", \"x\");\n",
        &[],
    );
    assert_exit(&out, 1);
    assert!(
        out.stderr
            .starts_with("error: unknown function: tokens::revok\n  --> typo.rhai:2:9\n"),
        "{out:?}"
    );
    assert!(
        out.stderr
            .ends_with("  = help: did you mean `tokens::revoke`?\n"),
        "{out:?}"
    );
    assert!(env.sim.requests().is_empty());
}

#[test]
fn unknown_global_function_is_found_before_the_run() {
    let env = Env::new();
    let out = env.run(
        "typo.rhai",
        "let n = tokens::list(\"bi_tool\");\nprnt(n);\n",
        &[],
    );
    assert_exit(&out, 1);
    assert_eq!(
        out.stderr,
        "error: unknown function: prnt\n  --> typo.rhai:2:1\n   |\n 2 | prnt(n);\n   | ^\n  = help: did you mean `print`?\n"
    );
    assert!(env.sim.requests().is_empty(), "found before anything ran");
    // A function the script defines, or one called through a pointer, is fine.
    let out = env.run(
        "ok.rhai",
        "fn twice(x) { x * 2 }\nlet f = Fn(\"twice\");\nlet g = |x| x + 1;\ntwice(1) + f.call(2) + g.call(3)",
        &[],
    );
    assert_exit(&out, 0);
    assert_eq!(out.stdout, "10\n");
}

#[test]
fn api_404_inside_a_function_shows_the_call_chain() {
    let env = Env::new();
    let out = env.run(
        "nf.rhai",
        "fn count(u) {\n    tokens::list(u).len()\n}\ncount(\"ghost\")\n",
        &[],
    );
    assert_exit(&out, 1);
    assert_eq!(
        out.stderr,
        "error: GET /v1/users/ghost/tokens failed with 404 Not Found (NOT_FOUND): User ghost not found\n  --> nf.rhai:2:13\n   |\n 2 |     tokens::list(u).len()\n   |             ^\n  = note: in function `count`, called at nf.rhai:4:1\n"
    );
}

#[test]
fn validation_error_names_the_field() {
    let env = Env::new();
    let out = env.run(
        "v.rhai",
        "tokens::create(\"bi_tool\", #{name: \"t\", ttl: \"1d\", token_type: \"rw\"})\n",
        &[],
    );
    assert_exit(&out, 1);
    assert_eq!(
        out.stderr,
        "error: invalid token_type: token_type \"rw\" is not one of read_write, read_scaling\n  --> v.rhai:1:9\n   |\n 1 | tokens::create(\"bi_tool\", #{name: \"t\", ttl: \"1d\", token_type: \"rw\"})\n   |         ^\n"
    );
}

#[test]
fn errors_in_imported_modules_point_into_the_module() {
    let env = Env::new();
    env.script("helpers.rhai", "fn boom() {\n    throw \"kaput\";\n}\n");
    let out = env.run("main.rhai", "import \"helpers\" as h;\nh::boom();\n", &[]);
    assert_exit(&out, 1);
    assert!(
        out.stderr
            .starts_with("error: uncaught exception: kaput\n  --> "),
        "{out:?}"
    );
    assert!(
        out.stderr
            .contains("helpers.rhai:2:5\n   |\n 2 |     throw \"kaput\";\n   |     ^\n"),
        "{out:?}"
    );
    assert!(
        out.stderr
            .contains("= note: in function `boom`, called at main.rhai:2:4"),
        "{out:?}"
    );
}

#[test]
fn bad_token_is_exit_3() {
    let env = Env::new();
    std::fs::write(&env.token_file, "wrong-token\n").unwrap();
    let out = env.run("x.rhai", "tokens::list(\"bi_tool\")", &[]);
    assert_exit(&out, 3);
    assert!(out.stderr.starts_with(
        "error: GET /v1/users/bi_tool/tokens failed with 401 Invalid Credentials (UNAUTHORIZED) — the admin token was refused"
    ), "{out:?}");
    assert!(!out.stderr.contains("wrong-token"));
}

#[test]
fn non_admin_token_is_exit_3() {
    let env = Env::new();
    std::fs::write(&env.token_file, "bi-secret-looker-00000000000000\n").unwrap();
    let out = env.run("x.rhai", "accounts::create(\"someone\")", &[]);
    assert_exit(&out, 3);
    assert!(out.stderr.contains("403 Forbidden (FORBIDDEN)"), "{out:?}");
    assert!(!env.org().users.contains_key("someone"));
}

#[test]
fn missing_or_empty_token_is_exit_2() {
    let home = tempfile::tempdir().unwrap();
    let script = home.path().join("x.rhai");
    std::fs::write(&script, "1").unwrap();
    let out = Cmd::bare(home.path())
        .args(["run", script.to_str().unwrap()])
        .output();
    assert_exit(&out, 2);
    assert_eq!(
        out.stderr,
        "error: no admin token: set MOTHERDUCK_ADMIN_TOKEN, pass --token-file PATH, or add token_file to a profile (or try --sandbox to run against the built-in demo organization)\n"
    );
    let empty = home.path().join("empty.token");
    std::fs::write(&empty, "\n").unwrap();
    let out = Cmd::bare(home.path())
        .args([
            "--token-file",
            empty.to_str().unwrap(),
            "run",
            script.to_str().unwrap(),
        ])
        .output();
    assert_exit(&out, 2);
    assert_eq!(
        out.stderr,
        format!("error: token file {} is empty\n", empty.display())
    );
    let out = Cmd::bare(home.path())
        .env("MOTHERDUCK_TOKEN", "   ")
        .args(["run", script.to_str().unwrap()])
        .output();
    assert_exit(&out, 2);
}

#[test]
fn plain_http_to_a_remote_host_is_refused() {
    let home = tempfile::tempdir().unwrap();
    let out = Cmd::bare(home.path())
        .env("MOTHERDUCK_TOKEN", "t")
        .args(["--api-url", "http://api.motherduck.com", "run", "overview"])
        .output();
    assert_exit(&out, 2);
    assert_eq!(
        out.stderr,
        "error: refusing API URL \"http://api.motherduck.com\": plain http is allowed only for loopback hosts (127.0.0.1, ::1, localhost); use https (the URL comes from --api-url)\n"
    );
    let out = Cmd::bare(home.path())
        .env("MOTHERDUCK_TOKEN", "t")
        .env(
            "MOTHERDUCK_API_BASE_URL",
            "https://user:pw@api.motherduck.com",
        )
        .args(["run", "overview"])
        .output();
    assert_exit(&out, 2);
    assert!(out.stderr.contains("user info"), "{out:?}");
    assert!(!out.stderr.contains("pw@"));
}

fn against(url: &str, script: &str) -> crate::support::Output {
    let home = tempfile::tempdir().unwrap();
    let path = home.path().join("x.rhai");
    std::fs::write(&path, script).unwrap();
    Cmd::bare(home.path())
        .env("MOTHERDUCK_ADMIN_TOKEN", "some-token")
        .args([
            "--api-url",
            url,
            "--timeout",
            "5",
            "--retries",
            "0",
            "run",
            path.to_str().unwrap(),
        ])
        .output()
}

#[test]
fn a_500_is_exit_6_with_the_servers_message() {
    let server = RawServer::start(
        500,
        "application/json",
        r#"{"code":"INTERNAL_SERVER_ERROR","message":"Internal Error","issues":[]}"#,
    );
    let out = against(&server.url, "tokens::list(\"bi_tool\")");
    assert_exit(&out, 6);
    assert!(out.stderr.starts_with(
        "error: GET /v1/users/bi_tool/tokens failed with 500 Internal Error (INTERNAL_SERVER_ERROR) — the API failed on its side; try again later\n"
    ), "{out:?}");
}

#[test]
fn non_json_and_truncated_bodies_are_reported_not_panicked() {
    let html = RawServer::start(200, "text/html", "<html>proxy login</html>");
    let out = against(&html.url, "tokens::list(\"bi_tool\")");
    assert_exit(&out, 1);
    assert!(out.stderr.starts_with(
        "error: GET /v1/users/bi_tool/tokens: the server sent a response that is not valid API JSON (malformed JSON at line 1 column 1)\n"
    ), "{out:?}");
    let cut = RawServer::start(200, "application/json", r#"{"tokens": [{"id": "a""#);
    let out = against(&cut.url, "tokens::list(\"bi_tool\")");
    assert_exit(&out, 1);
    assert!(
        out.stderr
            .contains("not valid API JSON (the body ends early"),
        "{out:?}"
    );
    let unrouted = RawServer::start(404, "text/plain", "Not Found");
    let out = against(&unrouted.url, "tokens::list(\"bi_tool\")");
    assert_exit(&out, 1);
    assert!(out.stderr.starts_with(
        "error: GET /v1/users/bi_tool/tokens failed with 404 Not Found — the API has no such route: check --api-url\n"
    ), "{out:?}");
}

#[test]
fn unreachable_server_is_one_clear_line() {
    let url = dead_url();
    let out = against(&url, "accounts::create(\"someone\")");
    assert_exit(&out, 6);
    let host = url.trim_start_matches("http://");
    assert!(
        out.stderr.starts_with(&format!(
            "error: POST /v1/users: cannot reach {host}: connection refused\n"
        )),
        "{out:?}"
    );
}

#[test]
fn api_errors_can_be_caught_as_maps() {
    let env = Env::new();
    let out = env.run(
        "catch.rhai",
        r#"
        try { tokens::list("ghost"); } catch (e) {
            print(e.kind); print(e.status); print(e.code); print(e.message); print(e.method); print(e.path);
        }
        try { accounts::create("x"); } catch (e) { print(`${e.kind} ${e.field} ${e.status}`); }
        "#,
        &[],
    );
    assert_exit(&out, 0);
    assert_eq!(out.stdout, "api\n404\nNOT_FOUND\nUser ghost not found\nGET\n/v1/users/ghost/tokens\nvalidation username \n");
}

#[cfg(unix)]
#[test]
fn ctrl_c_cancels_an_in_flight_call_and_exits_130() {
    use std::time::{Duration, Instant};
    let env = Env::with(
        crate::support::SEED,
        mdops::sim::Behaviour {
            latency: Duration::from_secs(20),
            ..Default::default()
        },
    );
    let script = env.script("slow.rhai", "print(\"start\");\ntry {\n    tokens::list(\"bi_tool\");\n} catch (e) {\n    print(\"caught\");\n}\nprint(\"after\");\n");
    let mut cmd = env.mdops();
    cmd.cmd
        .args(["run", script.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = cmd.cmd.spawn().unwrap();
    let started = Instant::now();
    crate::support::wait_until("the call to be in flight", Duration::from_secs(20), || {
        env.sim.arrived() > 0
    });
    let killed = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = child.wait_with_output().unwrap();
    let elapsed = started.elapsed();
    assert_eq!(out.status.code(), Some(130));
    assert!(
        elapsed < Duration::from_secs(5),
        "took {elapsed:?}: the request was not cancelled"
    );
    // Cancellation cannot be caught: the script stops where it was.
    assert_eq!(String::from_utf8_lossy(&out.stdout), "start\n");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("error: interrupted (Ctrl-C): stopped, then cleaned up\n  --> "),
        "{stderr}"
    );
    assert!(stderr.contains("slow.rhai:3:"), "{stderr}");
}

#[test]
fn a_slow_server_times_out_with_a_clear_message() {
    let env = Env::with(
        crate::support::SEED,
        mdops::sim::Behaviour {
            latency: std::time::Duration::from_secs(10),
            ..Default::default()
        },
    );
    let started = std::time::Instant::now();
    let out = env.run(
        "slow.rhai",
        "tokens::list(\"bi_tool\")",
        &["--timeout", "1", "--retries", "0"],
    );
    assert_exit(&out, 6);
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert!(
        out.stderr
            .starts_with("error: GET /v1/users/bi_tool/tokens: no answer within 1s\n"),
        "{out:?}"
    );
}

/// A closure written in the script and called from a bundled module: the
/// error points into the script, where the closure is.
#[test]
fn an_error_in_a_closure_called_from_a_module_points_into_the_script() {
    let env = Env::new();
    let out = env.run(
        "cl.rhai",
        "import \"results\" as results;\nlet rows = results::rows([#{error: \"x\", item: \"a\"}], |item, why| item.nope.deeper);\n",
        &[],
    );
    assert_exit(&out, 1);
    assert!(out.stderr.contains("  --> cl.rhai:2:"), "{out:?}");
    assert!(
        out.stderr
            .contains("in a closure called at stdlib/results.rhai:"),
        "{out:?}"
    );
}
