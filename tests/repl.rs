//! The REPL in a pseudo-terminal, as an operator would use it, and through a pipe.

use crate::support::Env;
use rexpect::reader::Options;
use rexpect::session::{spawn_with_options, PtySession};
use std::io::Write;
use std::process::Stdio;

fn repl(env: &Env, extra: &[&str]) -> PtySession {
    let mut c = env.mdops();
    c.cmd
        .env("TERM", "xterm")
        .env("NO_COLOR", "1")
        .stdin(Stdio::inherit())
        .arg("repl")
        .args(extra);
    let p = spawn_with_options(
        c.cmd,
        Options::new()
            .timeout_ms(Some(15_000))
            .strip_ansi_escape_codes(true),
    )
    .expect("repl starts");
    wide(&p);
    p
}

/// A window far wider than any line the tests type: the line editor then
/// never wraps a line and redraws the prompt, which a test could mistake for
/// a fresh one. (It reads the size before each line and on SIGWINCH.)
fn wide(p: &PtySession) {
    use std::os::unix::io::AsRawFd;
    let pty = p.process().get_file_handle().expect("pty");
    let size = libc::winsize {
        ws_row: 50,
        ws_col: 500,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize we own from a valid descriptor.
    unsafe { libc::ioctl(pty.as_raw_fd(), libc::TIOCSWINSZ, &size) };
}

/// Waits for a fresh prompt: only then is the line editor reading keys in raw
/// mode. Callers first wait for output that cannot appear in the echo of what
/// they typed, since long lines (with hints) wrap and redraw the prompt.
fn prompt(p: &mut PtySession) {
    p.exp_regex(r"\n\r*mdops> ").unwrap();
}

#[test]
fn banner_multiline_function_then_call() {
    let env = Env::new();
    let mut p = repl(&env, &[]);
    p.exp_string(&format!("connected to {}\r\n", env.sim.url()))
        .unwrap();
    prompt(&mut p);
    p.send_line("fn names(u) {").unwrap();
    p.send_line("  tokens::list(u).map(|t| t.name)").unwrap();
    p.send_line("}").unwrap();
    prompt(&mut p);
    p.send_line("let n = names(\"etl_pipeline\"); n.len()")
        .unwrap();
    p.exp_string("2").unwrap();
    prompt(&mut p);
    // An unknown function is one clear message; the session goes on.
    p.send_line("tokens::lst(\"x\")").unwrap();
    p.exp_string("did you mean `tokens::list`?").unwrap();
    prompt(&mut p);
    p.send_line("n.len() * 21").unwrap();
    p.exp_string("42").unwrap();
    p.send_line(":quit").unwrap();
    p.exp_eof().unwrap();
}

#[test]
fn tab_completes_namespaces_functions_and_keys() {
    let env = Env::new();
    let mut p = repl(&env, &[]);
    prompt(&mut p);
    p.send("tokens::").unwrap();
    p.flush().unwrap();
    // The first Tab completes what is common; the second lists the candidates.
    p.send("\t").unwrap();
    p.flush().unwrap();
    p.send("\t").unwrap();
    p.flush().unwrap();
    p.exp_string("tokens::list(").unwrap();
    p.send_control('u').unwrap();
    // A unique candidate completes in place.
    p.send("accounts::ex\t").unwrap();
    p.flush().unwrap();
    p.exp_string("accounts::exists(").unwrap();
    p.send_line("\"bi_tool\")").unwrap();
    p.exp_string("true").unwrap();
    p.send_line("let cfg = ducklings::get(\"etl_pipeline\"); 40 + 2")
        .unwrap();
    p.exp_string("42").unwrap();
    prompt(&mut p);
    p.send("cfg.read_s\t").unwrap();
    p.flush().unwrap();
    p.exp_string("cfg.read_scaling").unwrap();
    p.send_line(".flock_size").unwrap();
    p.exp_string("2").unwrap();
    p.send_line(":quit").unwrap();
    p.exp_eof().unwrap();
}

#[test]
fn ctrl_c_cancels_a_slow_call_and_keeps_the_session() {
    let env = Env::with(
        crate::support::SEED,
        mdops::sim::Behaviour {
            latency: std::time::Duration::from_secs(30),
            ..Default::default()
        },
    );
    let mut p = repl(&env, &[]);
    prompt(&mut p);
    p.send_line("let kept = 41;").unwrap();
    prompt(&mut p);
    let started = std::time::Instant::now();
    p.send_line("tokens::list(\"bi_tool\")").unwrap();
    crate::support::wait_until(
        "the call to be in flight",
        std::time::Duration::from_secs(20),
        || env.sim.arrived() > 0,
    );
    p.send_control('c').unwrap();
    p.exp_string("error: interrupted").unwrap();
    prompt(&mut p);
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    p.send_line("kept + 1").unwrap();
    p.exp_string("42").unwrap();
    prompt(&mut p);
    p.send_control('d').unwrap();
    p.exp_eof().unwrap();
}

#[test]
fn history_is_private_and_holds_no_secret() {
    let env = Env::new();
    let mut p = repl(&env, &[]);
    prompt(&mut p);
    p.send_line("let t = tokens::create(\"bi_tool\", \"from-repl\");")
        .unwrap();
    prompt(&mut p);
    p.send_line("t.token").unwrap();
    p.exp_string("<secret ").unwrap();
    prompt(&mut p);
    p.send_line("let v = t.token.reveal(); v.len() > 20")
        .unwrap();
    p.exp_string("true").unwrap();
    let secret = env.org().users["bi_tool"]
        .tokens
        .iter()
        .find(|t| t.name == "from-repl")
        .unwrap()
        .secret
        .clone();
    // Pasting the revealed value back into a line must not put it in the history.
    p.send_line(&format!("tokens::verify(\"bi_tool\", \"{secret}\")"))
        .unwrap();
    p.exp_string("true").unwrap();
    // Ctrl-D only once the editor reads keys again (before, the terminal eats it).
    prompt(&mut p);
    p.send_control('d').unwrap();
    p.exp_eof().unwrap();
    let path = env.home.path().join("repl_history");
    let history = std::fs::read_to_string(&path).unwrap();
    assert!(
        !history.contains(&secret),
        "history leaks the secret:\n{history}"
    );
    assert!(
        history.contains("tokens::verify(\"bi_tool\", \"<redacted>\")"),
        "{history}"
    );
    assert!(
        history.contains("let t = tokens::create(\"bi_tool\", \"from-repl\");"),
        "{history}"
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

#[test]
fn piped_input_runs_statements_and_reports_errors() {
    let env = Env::new();
    std::fs::write(
        env.home.path().join("init.rhai"),
        "fn greet(n) { `hello ${n}` }\nlet from_init = 7;\n",
    )
    .unwrap();
    let mut c = env.mdops();
    c.cmd
        .arg("repl")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(
            b"greet(\"ops\")\nfrom_init * 6\nlet rows = [#{a: 1, b: \"x\"},\n  #{a: 2, b: \"y\"}];\nrows\n:json\n#{n: 1}\nprint(undefined_thing)\n:vars\nimport \"report\" as r;\nr::approx(7200)\n",
        )
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "one input failed: {stderr}");
    assert_eq!(
        stdout,
        "\"hello ops\"\n42\na  b\n-  -\n1  x\n2  y\nJSON output on\n{\n  \"n\": 1\n}\nfrom_init  i64    7\nrows       array  {\"a\":1,\"b\":\"x\"}, {\"a\":2,\"b\":\"y\"}\n\"2h\"\n"
    );
    assert_eq!(
        stderr,
        "error: syntax error: Undefined variable: undefined_thing\n  --> <repl:6>:1:7\n   |\n 1 | print(undefined_thing)\n   |       ^\n"
    );
}

#[test]
fn load_clear_and_help_commands() {
    let env = Env::new();
    let lib = env.script("lib.rhai", "fn triple(x) { x * 3 }\nlet loaded = true;\n");
    let mut c = env.mdops();
    c.cmd
        .arg("repl")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.cmd.spawn().unwrap();
    let input = format!(
        ":load {}\ntriple(5)\nloaded\n:clear\n:vars\n:help tokens::revoke\n:help\n:hepl\n:help tokens::lst\n",
        lib.display()
    );
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.starts_with("15\ntrue\ncleared variables, functions and imports\n(no variables)\ntokens::revoke(username: string, token_id: string)\n    Revokes a token by its `id`"), "{stdout}");
    assert!(stdout.contains("Commands:\n  :help [NAME]"), "{stdout}");
    assert_eq!(
        stderr,
        "error: unknown command :hepl (did you mean :help?); :help lists them\nerror: no function or namespace named \"tokens::lst\" (did you mean `tokens::list`?)\n"
    );
}

/// `:clear` starts over: an import compiles its file again, and the files
/// that file imports, even when only one of those changed.
#[test]
fn clear_compiles_edited_imports_again() {
    use std::io::{BufRead, Read};
    let env = Env::new();
    env.script("b.rhai", "fn v() { 1 }\n");
    env.script("a.rhai", "import \"b\" as b;\nfn v() { b::v() }\n");
    let mut c = env.mdops();
    c.cmd
        .current_dir(env.home.path())
        .arg("repl")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.cmd.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    stdin.write_all(b"import \"a\" as a;\na::v()\n").unwrap();
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert_eq!(first, "1\n");
    env.script("b.rhai", "fn v() { 2 }\n");
    stdin
        .write_all(b":clear\nimport \"a\" as a;\na::v()\n")
        .unwrap();
    drop(stdin);
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "cleared variables, functions and imports\n2\n");
    assert!(child.wait().unwrap().success());
}

#[test]
fn dry_run_repl_makes_no_writes() {
    let env = Env::new();
    let mut c = env.mdops();
    c.cmd
        .args(["repl", "--dry-run"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"accounts::create(\"dry_one\");\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "[dry-run] create account dry_one\nusername  dry_one\n"
    );
    assert!(env.sim.writes().is_empty());
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn deleting_in_a_terminal_asks_for_the_username() {
    let env = Env::new();
    let script = env.script(
        "del.rhai",
        "accounts::delete(\"bi_tool\");\nprint(\"done\");\n",
    );
    let spawn = || {
        let mut c = env.mdops();
        c.cmd
            .env("TERM", "xterm")
            .stdin(Stdio::inherit())
            .args(["run", script.to_str().unwrap()]);
        spawn_with_options(
            c.cmd,
            Options::new()
                .timeout_ms(Some(15_000))
                .strip_ansi_escape_codes(true),
        )
        .unwrap()
    };
    let mut p = spawn();
    p.exp_string("Delete account bi_tool and all of its data? This cannot be undone.")
        .unwrap();
    p.exp_string("Type bi_tool to confirm: ").unwrap();
    p.send_line("bi_to").unwrap();
    p.exp_string("needs confirmation").unwrap();
    p.exp_eof().unwrap();
    assert!(
        env.org().users.contains_key("bi_tool"),
        "a wrong answer deletes nothing"
    );
    let mut p = spawn();
    p.exp_string("Type bi_tool to confirm: ").unwrap();
    p.send_line("bi_tool").unwrap();
    p.exp_string("done").unwrap();
    p.exp_eof().unwrap();
    assert!(!env.org().users.contains_key("bi_tool"));
}

/// A session that mints and leaves without delivering: the token is revoked
/// when it ends, said so, and the session ends with exit 4.
#[test]
fn a_session_revokes_what_it_minted_and_never_delivered() {
    let env = Env::new();
    let mut c = env.mdops();
    c.cmd
        .arg("repl")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"let kept = tokens::create(\"bi_tool\", \"kept\"); kept.token.reveal();\nlet lost = tokens::create(\"bi_tool\", \"lost\");\nlost.name\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains("warning: token \"lost\" (")
            && stderr.contains(
                "was minted in this session but never delivered, revealed or released: revoked"
            ),
        "{stderr}"
    );
    assert_eq!(env.token_names("bi_tool"), ["kept", "looker"]);
}

/// SIGTERM at the prompt (a session closed by its supervisor): the clean-up
/// still runs, and the session exits 143.
#[test]
fn sigterm_at_the_prompt_still_revokes_undelivered_tokens() {
    let env = Env::new();
    let mut p = repl(&env, &[]);
    prompt(&mut p);
    p.send_line("let t = tokens::create(\"bi_tool\", \"interrupted\"); t.name")
        .unwrap();
    p.exp_string("\"interrupted\"").unwrap();
    prompt(&mut p);
    p.process_mut()
        .signal(rexpect::process::Signal::SIGTERM)
        .unwrap();
    p.exp_eof().unwrap();
    let status = p.process().wait().unwrap();
    assert!(
        matches!(status, rexpect::process::WaitStatus::Exited(_, 143)),
        "{status:?}"
    );
    assert_eq!(
        env.token_names("bi_tool"),
        ["looker"],
        "the token was revoked"
    );
}
