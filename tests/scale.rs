//! parallel(), run locks, the summary line, JSON logs.

use crate::support::{assert_exit, Env, SEED};
use mdops::sim::Behaviour;
use std::time::{Duration, Instant};

#[test]
fn parallel_keeps_order_and_captures_errors() {
    let env = Env::new();
    let out = env.run(
        "p.rhai",
        r#"
        import "report" as report;
        fn check(n) {
            if n % 7 == 0 { throw `no ${n}`; }
            if n == 5 { tokens::list("ghost"); }
            n * 10
        }
        let offset = 1;
        let a = parallel(range(1, 16), |n| check(n) + offset);
        let b = parallel(["bi_tool", "etl_pipeline"], |u| report::next_expiry(tokens::list(u)), #{concurrency: 2});
        print(b);
        a.map(|r| if type_of(r) == "map" { if type_of(r.error) == "map" { `${r.item}:${r.error.status}` } else { `${r.item}:${r.error}` } } else { r })
        "#,
        &["--concurrency", "4"],
    );
    // Three items failed: the run says so with exit 4, as its summary does.
    assert_exit(&out, 4);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(
        lines[0].starts_with("[\"in 25d\", \"in 79d\"]")
            || lines[0].starts_with("[\"in 24d\", \"in 79d\"]"),
        "{out:?}"
    );
    assert_eq!(
        &lines[1..],
        [
            "11", "21", "31", "41", "5:404", "61", "7:no 7", "81", "91", "101", "111", "121",
            "131", "14:no 14", "151"
        ]
    );
    assert!(
        out.stderr.starts_with("p.rhai: 14 items ok, 3 failed;"),
        "{out:?}"
    );
}

/// Workers read what a closure captured all the time (rotate-tokens's options
/// map). A captured variable is one shared value behind a lock; read at once
/// from many threads, Rhai gave up on it with "Data race detected" and failed
/// items at random. Each worker now has its own copy, so none fails, and a
/// change a worker makes stays in that worker.
#[test]
fn workers_reading_captured_variables_never_race() {
    let env = Env::new();
    let out = env.run(
        "race.rhai",
        r#"
        let o = #{sink: #{kind: "file", dir: "/x"}, n: 1, nested: [#{k: 2}]};
        let f = |x| x + o.n;
        let count = 0;
        let r = parallel(0..600, |i| {
            let s = 0;
            for k in 0..200 { if o.sink.kind == "file" { s += f.call(o.nested[0].k); } }
            count += 1;
            s
        });
        print(r.filter(|x| x != 600).len());
        print(count);
        "#,
        &["--concurrency", "32"],
    );
    assert_exit(&out, 0);
    assert_eq!(out.stdout, "0\n0\n", "{out:?}");
    assert!(
        out.stderr.starts_with("race.rhai: 600 items ok, 0 failed;"),
        "{out:?}"
    );
}

/// A closure that captures itself (a recursive one) is copied into each
/// worker once, not forever: the run ends as it does one item at a time
/// (Rhai refuses the recursion through the shared variable either way),
/// never with the process overflowing its stack.
#[test]
fn a_closure_that_captures_itself_is_copied_into_workers() {
    let env = Env::new();
    let script = r#"
        let fib = 0;
        fib = |n| if n < 2 { n } else { fib.call(n - 1) + fib.call(n - 2) };
        let r = parallel([0, 1, 2, 7], |x| fib.call(x));
        print(r.map(|x| if type_of(x) == "map" { "failed" } else { `${x}` }));
        "#;
    let one = env.run("rec.rhai", script, &["--concurrency", "1"]);
    let many = env.run("rec.rhai", script, &["--concurrency", "4"]);
    assert_exit(&one, 4);
    assert_exit(&many, 4);
    assert_eq!(many.stdout, one.stdout);
    assert_eq!(many.stdout, "[\"0\", \"1\", \"failed\", \"failed\"]\n");
    assert!(
        many.stderr.starts_with("rec.rhai: 2 items ok, 2 failed;"),
        "{many:?}"
    );
}

/// An imported module is compiled and its top level run once per run, not
/// once more for every worker of every `parallel()` call; its functions and
/// constants still work in every worker.
#[test]
fn imported_modules_load_once_for_all_workers() {
    let env = Env::new();
    env.script(
        "lib.rhai",
        "print(\"lib loaded\");\nexport const K = 3;\nfn triple(x) { x * 3 }\n",
    );
    let out = env.run(
        "main.rhai",
        r#"
        import "lib" as lib;
        let a = parallel(0..40, |i| lib::triple(i));
        let b = parallel(0..40, |i| lib::triple(i) + lib::K);
        print(a.reduce(|s, x| s + x, 0) + b.reduce(|s, x| s + x, 0));
        "#,
        &["--concurrency", "8"],
    );
    assert_exit(&out, 0);
    assert_eq!(out.stdout, "lib loaded\n4800\n", "{out:?}");
}

#[test]
fn parallel_runs_items_at_the_same_time() {
    let env = Env::with(
        SEED,
        Behaviour {
            latency: Duration::from_millis(200),
            ..Default::default()
        },
    );
    let script =
        "parallel(range(0, 16), |i| tokens::list(\"bi_tool\").len()).reduce(|s, x| s + x, 0)";
    let started = Instant::now();
    let out = env.run("c.rhai", script, &["--concurrency", "8"]);
    let elapsed = started.elapsed();
    assert_exit(&out, 0);
    assert_eq!(out.stdout, "16\n");
    // One at a time this is 16 × 200 ms = 3.2 s; eight at a time about 0.4 s.
    assert!(elapsed < Duration::from_millis(2000), "took {elapsed:?}");
    let started = Instant::now();
    let out = env.run("c.rhai", script, &["--concurrency", "1"]);
    assert_exit(&out, 0);
    assert!(started.elapsed() >= Duration::from_millis(3200));
}

#[test]
fn exit_inside_parallel_ends_the_run_with_its_code() {
    let env = Env::new();
    let out = env.run(
        "e.rhai",
        "parallel(range(0, 40), |i| { if i == 3 { exit(4); } i }); print(\"not reached\");",
        &[],
    );
    assert_exit(&out, 4);
    assert!(!out.stdout.contains("not reached"));
}

#[test]
fn a_held_lock_is_exit_5_and_a_dead_holders_lock_is_taken_over() {
    let env = Env::with(
        SEED,
        Behaviour {
            latency: Duration::from_secs(3),
            ..Default::default()
        },
    );
    let script = env.script("slow.rhai", "tokens::list(\"bi_tool\").len()");
    let mut first = env.mdops();
    first
        .cmd
        .args(["run", script.to_str().unwrap()])
        .stdout(std::process::Stdio::piped());
    let child = first.cmd.spawn().unwrap();
    // Its request in flight, the first run holds the lock.
    crate::support::wait_until("the first run's request", Duration::from_secs(20), || {
        env.sim.arrived() > 0
    });
    let out = env.mdops().args(["run", script.to_str().unwrap()]).output();
    assert_exit(&out, 5);
    assert!(
        out.stderr.starts_with(&format!(
            "error: another run of {} is in progress (pid={}, started=",
            script.display(),
            child.id()
        )),
        "{out:?}"
    );
    // A dry run may look while the real one works.
    let out = env
        .mdops()
        .args([
            "run",
            script.to_str().unwrap(),
            "--dry-run",
            "--timeout",
            "10",
        ])
        .output();
    assert_exit(&out, 0);
    let first = child.wait_with_output().unwrap();
    assert_eq!(first.status.code(), Some(0));
    // The lock file is still there, naming a process that is gone: it is taken over.
    let locks: Vec<_> = std::fs::read_dir(env.home.path().join("locks"))
        .unwrap()
        .collect();
    assert_eq!(locks.len(), 1);
    let out = env.mdops().args(["run", script.to_str().unwrap()]).output();
    assert_exit(&out, 0);
}

#[test]
fn json_logs_are_one_object_per_line() {
    let env = Env::new();
    let path = env.script("j.rhai", "parallel([1, 2, 3], |i| i * 2)");
    let out = env
        .mdops()
        .args(["--log-format", "json", "run", path.to_str().unwrap()])
        .output();
    assert_exit(&out, 0);
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert!(!lines.is_empty());
    for line in &lines {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        assert!(v["level"].is_string());
    }
    let last: serde_json::Value = serde_json::from_str(lines.last().unwrap()).unwrap();
    assert_eq!(last["fields"]["message"], "run finished");
    assert_eq!(last["fields"]["items_ok"], 3);
}

#[test]
fn max_rps_paces_every_request_of_the_run() {
    let env = Env::new();
    let path = env.script(
        "r.rhai",
        "parallel(range(0, 12), |i| tokens::list(\"bi_tool\").len()).len()",
    );
    let started = Instant::now();
    let out = env
        .mdops()
        .args(["--max-rps", "20", "run", path.to_str().unwrap()])
        .output();
    assert_exit(&out, 0);
    // 12 requests (plus none at start) at 20 per second, over 8 workers: at least ~0.55 s.
    assert!(
        started.elapsed() >= Duration::from_millis(550),
        "took {:?}",
        started.elapsed()
    );
    let out = env
        .mdops()
        .args(["--max-rps", "0", "run", path.to_str().unwrap()])
        .output();
    assert_exit(&out, 2);
    assert_eq!(
        out.stderr,
        "error: --max-rps must be between 0.01 and 100000, not 0\n"
    );
}

#[test]
fn a_progress_bar_shows_only_on_a_terminal() {
    use rexpect::reader::Options;
    use rexpect::session::spawn_with_options;
    let env = Env::with(
        SEED,
        Behaviour {
            latency: Duration::from_millis(300),
            ..Default::default()
        },
    );
    let script = env.script(
        "bar.rhai",
        "parallel(range(0, 6), |i| tokens::list(\"bi_tool\").len()).len()",
    );
    let mut c = env.mdops();
    c.cmd
        .env("TERM", "xterm")
        .stdin(std::process::Stdio::inherit())
        .args(["--concurrency", "2", "run", script.to_str().unwrap()]);
    let mut p = spawn_with_options(
        c.cmd,
        Options::new()
            .timeout_ms(Some(15_000))
            .strip_ansi_escape_codes(true),
    )
    .unwrap();
    p.exp_regex(r"\d/6 items").unwrap();
    p.exp_eof().unwrap();
    // Without a terminal (the other tests): no bar, only the summary line.
    let out = env.run("bar.rhai", "parallel(range(0, 6), |i| i).len()", &[]);
    assert_exit(&out, 0);
    assert!(!out.stderr.contains("items  "), "{out:?}");
}
