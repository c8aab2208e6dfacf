//! Bulk rotation at scale, beside its floor, and the same under faults.
//!
//! 1. An emulator with 20 ms latency per request and 1,000 service accounts with
//!    two tokens each; `rotate-tokens` at concurrency 1, 8 and 32. Reported: wall
//!    time, requests per second, and the ratio to the floor
//!    (requests × latency ÷ concurrency).
//! 2. Concurrency 32 again with 5% 5xx, 2% 429 (Retry-After 1 s) and 1% dropped
//!    answers; then every account is checked: exactly one live token, the new one,
//!    delivered (the sink holds it) and verified (the journal says so), the old
//!    ones revoked, no orphan.
//! 3. Peak RSS of `audit-report` over 10,000 accounts.
//! 4. Where state lives (`MDOPS_BENCH_ONLY=state`): SQLite against a baseline
//!    build, and PostgreSQL; see `state_paths`.
//!
//! Run: `cargo bench --bench rotation` (takes a few minutes: the concurrency-1
//! run alone is about 5,000 requests × 20 ms).

use mdops::sim::{BackgroundSim, Behaviour, Faults, Seed};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const LATENCY: Duration = Duration::from_millis(20);

fn seed(accounts: usize, tokens_each: usize) -> Seed {
    let mut list = Vec::new();
    for i in 0..accounts {
        let tokens: Vec<serde_json::Value> = (0..tokens_each)
            .map(|k| serde_json::json!({"name": "app", "age": format!("{}d", 100 + k * 50), "ttl": "365d"}))
            .collect();
        list.push(serde_json::json!({"username": format!("tenant_{i:05}"), "tokens": tokens}));
    }
    let doc = serde_json::json!({"admin_token": "bench-admin", "accounts": list});
    mdops::sim::seed::parse(&doc.to_string(), "json").unwrap()
}

struct Run {
    wall: Duration,
    code: i32,
    requests: usize,
    /// Of those, answered 429.
    throttled: usize,
    peak_rss_kb: i64,
    /// CPU seconds (user + system) the mdops process used.
    cpu: f64,
    stderr: String,
}

fn mdops(sim: &BackgroundSim, home: &Path, args: &[&str]) -> Run {
    mdops_as(env!("CARGO_BIN_EXE_mdops"), &[], sim, home, args)
}

// The child is reaped by wait4 (for its own rusage), which clippy cannot see.
#[allow(clippy::zombie_processes)]
fn mdops_as(
    bin: &str,
    env: &[(&str, &str)],
    sim: &BackgroundSim,
    home: &Path,
    args: &[&str],
) -> Run {
    let token = home.join("admin.token");
    std::fs::write(&token, "bench-admin\n").unwrap();
    let before = sim.requests().len();
    let start = Instant::now();
    let mut child = Command::new(bin)
        .env("MDOPS_HOME", home)
        .envs(env.iter().copied())
        .args([
            "--api-url",
            &sim.url(),
            "--token-file",
            token.to_str().unwrap(),
        ])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut s);
        s
    });
    // wait4 reports this child's own peak RSS (Linux: KiB).
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    let wall = start.elapsed();
    if std::env::var_os("MDOPS_BENCH_CPU").is_some() {
        eprintln!(
            "user {}.{:06}s system {}.{:06}s",
            usage.ru_utime.tv_sec,
            usage.ru_utime.tv_usec,
            usage.ru_stime.tv_sec,
            usage.ru_stime.tv_usec
        );
    }
    Run {
        wall,
        code: if libc::WIFEXITED(status) {
            libc::WEXITSTATUS(status)
        } else {
            -1
        },
        requests: sim.requests().len() - before,
        throttled: sim.requests()[before..]
            .iter()
            .filter(|r| r.status == 429)
            .count(),
        peak_rss_kb: usage.ru_maxrss,
        cpu: (usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) as f64
            + (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) as f64 / 1e6,
        stderr: reader.join().unwrap(),
    }
}

/// Every account: exactly one live token, `app.g1`, whose secret is the one in
/// its sink file and whose journal entry is delivered and verified; every token
/// it started with revoked. Returns the number of accounts that are not so.
fn check_converged(sim: &BackgroundSim, home: &Path, sinks: &Path) -> usize {
    let db = rusqlite::Connection::open(home.join("state.db")).unwrap();
    let org = sim.shared().org();
    let mut bad = 0;
    for (name, user) in org.users.iter() {
        let ok = user.tokens.len() == 1
            && {
                let t = &user.tokens[0];
                let sink =
                    std::fs::read_to_string(sinks.join(name).join("app.token")).unwrap_or_default();
                let journaled: Option<(Option<String>, Option<String>, Option<String>)> = db
                .query_row(
                    "SELECT delivered_at, verified_at, revoked_at FROM token_journal WHERE token_id = ?1",
                    [&t.id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .ok();
                t.name == "app.g1"
                    && sink == format!("{}\n", t.secret)
                    && matches!(journaled, Some((Some(_), Some(_), None)))
            };
        if !ok {
            bad += 1;
        }
    }
    // Journal rows of tokens that no longer exist must say they were revoked.
    let live: std::collections::HashSet<String> = org
        .users
        .values()
        .flat_map(|u| u.tokens.iter().map(|t| t.id.clone()))
        .collect();
    let mut stmt = db
        .prepare("SELECT token_id, revoked_at FROM token_journal")
        .unwrap();
    let rows = stmt
        .query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?))
        })
        .unwrap();
    for row in rows {
        let (id, revoked) = row.unwrap();
        if !live.contains(&id) && revoked.is_none() {
            bad += 1;
        }
    }
    bad
}

/// `n` accounts, or a few with MDOPS_BENCH_SMOKE set: CI runs every row once
/// that way (`cargo test --bench rotation`), and every account must converge.
fn size(n: usize) -> usize {
    if smoke() {
        (n / 50).clamp(4, 40)
    } else {
        n
    }
}

fn smoke() -> bool {
    std::env::var_os("MDOPS_BENCH_SMOKE").is_some()
}

fn rotation_at(concurrency: usize, behaviour: Behaviour) -> (Run, usize, usize) {
    rotation_of(size(1000), concurrency, behaviour)
}

fn rotation_of(accounts: usize, concurrency: usize, behaviour: Behaviour) -> (Run, usize, usize) {
    let sim = BackgroundSim::start(&seed(accounts, 2), behaviour).unwrap();
    let home = tempfile::tempdir().unwrap();
    let sinks = tempfile::tempdir().unwrap();
    let c = concurrency.to_string();
    let sink_dir = format!("sink_dir={}", sinks.path().display());
    let args = [
        "--concurrency",
        &c,
        "run",
        "rotate-tokens",
        "--arg",
        "accounts=all",
        "--arg",
        "prefix=app",
        "--arg",
        &sink_dir,
    ];
    let first = mdops(&sim, home.path(), &args);
    // Under faults an account may exhaust its retries: a rerun must finish it.
    let mut reruns = 0;
    let mut code = first.code;
    while code == 4 && reruns < 3 {
        reruns += 1;
        code = mdops(&sim, home.path(), &args).code;
    }
    assert_eq!(code, 0, "rotation did not converge: {}", first.stderr);
    let bad = check_converged(&sim, home.path(), sinks.path());
    assert!(!smoke() || bad == 0, "{bad} accounts did not converge");
    (first, reruns, bad)
}

fn print_row(label: &str, run: &Run, baseline: Duration, reruns: usize, bad: usize) {
    println!(
        "{:<34} {:>8.2}s {:>9} {:>8.1}% {:>8.2}s {:>7.2}x {:>5}{}",
        label,
        run.wall.as_secs_f64(),
        run.requests,
        100.0 * run.throttled as f64 / run.requests.max(1) as f64,
        baseline.as_secs_f64(),
        run.wall.as_secs_f64() / baseline.as_secs_f64(),
        bad,
        if reruns > 0 {
            format!("  ({reruns} rerun)")
        } else {
            String::new()
        }
    );
    println!(
        "    mdops: peak RSS {:.1} MB, CPU {:.2}s = {:.3} ms per request",
        run.peak_rss_kb as f64 / 1024.0,
        run.cpu,
        1000.0 * run.cpu / run.requests.max(1) as f64
    );
    if let Some(summary) = run.stderr.lines().last() {
        println!("    {summary}");
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    // MDOPS_BENCH_ONLY=32,faults,... runs some rows: 1, 8, 32, faults, throttles,
    // ratelimit, 10k, audit.
    let only = std::env::var("MDOPS_BENCH_ONLY").unwrap_or_default();
    let wanted = |part: &str| only.is_empty() || only.split(',').any(|p| p.trim() == part);
    let latency = Behaviour {
        latency: LATENCY,
        ..Default::default()
    };
    println!("\nRotate accounts × 2 tokens, emulator latency 20 ms per request");
    println!(
        "{:<34} {:>9} {:>9} {:>9} {:>9} {:>8} {:>5}",
        "run", "wall", "requests", "throttled", "baseline", "ratio", "bad"
    );
    // Floor: requests × latency ÷ concurrency.
    let floor = |run: &Run, c: usize| LATENCY * run.requests as u32 / c as u32;
    let mut fault_free_32: Option<Duration> = None;
    for c in [1usize, 8, 32] {
        if wanted(&c.to_string()) || (c == 32 && (wanted("faults") || wanted("throttles"))) {
            let (run, reruns, bad) = rotation_at(c, latency.clone());
            print_row(
                &format!("(b) 1,000, concurrency {c} vs floor"),
                &run,
                floor(&run, c),
                reruns,
                bad,
            );
            if c == 32 {
                fault_free_32 = Some(run.wall);
            }
        }
    }
    let faults = Faults {
        error_rate: 0.05,
        drop_rate: 0.01,
        retry_after: 1,
        seed: 42,
        ..Default::default()
    };
    if wanted("faults") {
        let (run, reruns, bad) = rotation_at(
            32,
            Behaviour {
                faults: faults.clone(),
                ..latency.clone()
            },
        );
        print_row(
            "(c) + 5% 5xx, 1% drops vs (b)",
            &run,
            fault_free_32.unwrap(),
            reruns,
            bad,
        );
    }
    if wanted("throttles") {
        let (run, reruns, bad) = rotation_at(
            32,
            Behaviour {
                faults: Faults {
                    throttle_rate: 0.02,
                    ..faults.clone()
                },
                ..latency.clone()
            },
        );
        print_row(
            "(d) + 2% random 429 (1 s) vs (b)",
            &run,
            fault_free_32.unwrap(),
            reruns,
            bad,
        );
    }
    if wanted("ratelimit") {
        let (run, reruns, bad) = rotation_of(
            size(300),
            32,
            Behaviour {
                rate_limit: Some(100.0),
                ..latency.clone()
            },
        );
        // Ideal: every successful request at exactly the server's rate.
        let ideal = Duration::from_secs_f64((run.requests - run.throttled) as f64 / 100.0);
        print_row(
            "(a) 300, server allows 100/s vs ideal",
            &run,
            ideal,
            reruns,
            bad,
        );
    }
    if wanted("10k") {
        let (run, reruns, bad) = rotation_of(size(10_000), 32, Behaviour::default());
        println!(
            "(e) rotate 10,000 accounts, no latency: wall {:.1}s, {} requests, peak RSS {:.1} MB, CPU {:.3} ms per request, {bad} bad, {reruns} reruns",
            run.wall.as_secs_f64(),
            run.requests,
            run.peak_rss_kb as f64 / 1024.0,
            1000.0 * run.cpu / run.requests.max(1) as f64
        );
    }

    if wanted("state") {
        state_paths();
    }
    if !wanted("audit") {
        return;
    }
    println!("\naudit-report over 10,000 accounts, all in the inventory, and 10 gone (no latency)");
    let sim = BackgroundSim::start(&seed(size(10_000), 1), Behaviour::default()).unwrap();
    let home = tempfile::tempdir().unwrap();
    // Every account tracked, and entries whose account is gone: the report
    // looks each entry up among its rows.
    let entries: Vec<serde_json::Value> = (0..size(10_000))
        .map(|i| format!("tenant_{i:05}"))
        .chain((0..10).map(|i| format!("gone_{i}")))
        .map(|u| serde_json::json!({ "username": u }))
        .collect();
    let inventory = home.path().join("inventory.json");
    std::fs::write(&inventory, serde_json::Value::from(entries).to_string()).unwrap();
    let imported = mdops(
        &sim,
        home.path(),
        &["inventory", "import", inventory.to_str().unwrap()],
    );
    assert_eq!(imported.code, 0, "{}", imported.stderr);
    let run = mdops(
        &sim,
        home.path(),
        &[
            "--concurrency",
            "8",
            "run",
            "audit-report",
            "--output",
            "json",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    println!(
        "wall {:.1}s, {} requests, peak RSS {:.1} MB",
        run.wall.as_secs_f64(),
        run.requests,
        run.peak_rss_kb as f64 / 1024.0
    );
}

/// Where state lives, measured where it costs most: 1,000 accounts rotated at
/// concurrency 32 with no latency (mdops's own work dominates). Side by side
/// in one run, alternating, three times each: a baseline build's binary
/// (`MDOPS_BENCH_BASELINE=/path/to/mdops`), this build on SQLite, and this
/// build on PostgreSQL (`MDOPS_BENCH_STATE_URL=postgresql://...`, a database
/// it may fill). Reported: the median of each.
fn state_paths() {
    let this = env!("CARGO_BIN_EXE_mdops").to_string();
    let mut variants: Vec<(String, String, Option<String>)> = Vec::new();
    if let Ok(base) = std::env::var("MDOPS_BENCH_BASELINE") {
        variants.push(("baseline build, SQLite".into(), base, None));
    }
    variants.push(("this build, SQLite".into(), this.clone(), None));
    if let Ok(url) = std::env::var("MDOPS_BENCH_STATE_URL") {
        variants.push(("this build, PostgreSQL".into(), this, Some(url)));
    }
    // MDOPS_BENCH_STATE_LATENCY_MS=20 adds the API's latency (default: none,
    // so that mdops's own work shows).
    let latency: u64 = std::env::var("MDOPS_BENCH_STATE_LATENCY_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let behaviour = Behaviour {
        latency: Duration::from_millis(latency),
        ..Default::default()
    };
    println!("\nState: rotate 1,000 accounts × 2 tokens, concurrency 32, latency {latency} ms (median of 3, alternating)");
    println!(
        "{:<26} {:>9} {:>9} {:>12} {:>14}",
        "state", "wall", "requests", "CPU", "CPU/request"
    );
    let mut results: Vec<Vec<Run>> = variants.iter().map(|_| Vec::new()).collect();
    for _ in 0..3 {
        for (i, (_, bin, url)) in variants.iter().enumerate() {
            let sim = BackgroundSim::start(&seed(size(1000), 2), behaviour.clone()).unwrap();
            let home = tempfile::tempdir().unwrap();
            let sinks = tempfile::tempdir().unwrap();
            let sink_dir = format!("sink_dir={}", sinks.path().display());
            let env: Vec<(&str, &str)> = url
                .as_deref()
                .map(|u| vec![("MDOPS_STATE_URL", u)])
                .unwrap_or_default();
            let run = mdops_as(
                bin,
                &env,
                &sim,
                home.path(),
                &[
                    "--concurrency",
                    "32",
                    "run",
                    "rotate-tokens",
                    "--arg",
                    "accounts=all",
                    "--arg",
                    "prefix=app",
                    "--arg",
                    &sink_dir,
                ],
            );
            assert_eq!(run.code, 0, "{}: {}", variants[i].0, run.stderr);
            results[i].push(run);
        }
    }
    for ((label, _, _), mut runs) in variants.iter().zip(results) {
        runs.sort_by(|a, b| a.cpu.total_cmp(&b.cpu));
        let m = &runs[1];
        println!(
            "{:<26} {:>8.2}s {:>9} {:>11.2}s {:>11.3} ms",
            label,
            m.wall.as_secs_f64(),
            m.requests,
            m.cpu,
            1000.0 * m.cpu / m.requests.max(1) as f64
        );
    }
}
