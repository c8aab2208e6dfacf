//! What the runtime costs on top of what it must do, each beside its baseline:
//!
//! 1. Process wall time of `mdops run` on a trivial script, beside spawning
//!    `/bin/true` and `mdops --version`.
//! 2. Per-call cost of one API call against the local emulator (no latency):
//!    raw reqwest (baseline) vs the typed client vs a Rhai script calling
//!    `tokens::list` through the bridge.
//!
//! Run: `cargo bench --bench overhead` (release profile).

use mdops::api::{Client, ClientConfig, SecretString};
use mdops::runtime::{ApiAccess, Bridge, RunOptions, Runtime, StateLocation};
use mdops::script::diagnostics::Sources;
use mdops::script::host::Host;
use mdops::script::{self, PrintTo};
use mdops::sim::{BackgroundSim, Behaviour, Seed};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SEED: &str = r#"
admin_token = "bench-admin"
[[accounts]]
username = "etl_pipeline"
tokens = [
  { name = "a", age = "10d", ttl = "90d" },
  { name = "b", age = "100d" },
  { name = "c", age = "1d", ttl = "30d", token_type = "read_scaling" },
]
"#;

struct Stats {
    mean: Duration,
    median: Duration,
    p95: Duration,
}

fn stats(mut samples: Vec<Duration>) -> Stats {
    samples.sort();
    let n = samples.len();
    Stats {
        mean: samples.iter().sum::<Duration>() / n as u32,
        median: samples[n / 2],
        p95: samples[(n * 95 / 100).min(n - 1)],
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

fn time_process(runs: usize, mut make: impl FnMut() -> Command) -> Stats {
    // One warm-up run so the binary is in the page cache.
    let _ = make().status();
    let samples = (0..runs)
        .map(|_| {
            let start = Instant::now();
            let status = make().status().expect("spawns");
            let took = start.elapsed();
            assert!(status.success(), "benchmark command failed");
            took
        })
        .collect();
    stats(samples)
}

fn process_startup() {
    let bin = env!("CARGO_BIN_EXE_mdops");
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("trivial.rhai");
    std::fs::write(&script, "let x = 40 + 2;\nx\n").unwrap();
    let mdops = |args: &[&str]| {
        let mut c = Command::new(bin);
        c.args(args)
            .env("MDOPS_HOME", dir.path())
            .env("MOTHERDUCK_ADMIN_TOKEN", "unused")
            .env("MOTHERDUCK_API_BASE_URL", "http://127.0.0.1:9")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        c
    };
    let runs = scaled(50);
    let script_arg = script.to_str().unwrap().to_string();
    let rows = [
        (
            "/bin/true (process spawn floor)",
            time_process(runs, || Command::new("/bin/true")),
        ),
        (
            "mdops --version",
            time_process(runs, || mdops(&["--version"])),
        ),
        (
            "mdops run trivial.rhai",
            time_process(runs, || mdops(&["run", &script_arg])),
        ),
        (
            "mdops --sandbox run trivial.rhai",
            time_process(runs, || mdops(&["--sandbox", "run", &script_arg])),
        ),
    ];
    println!("\nProcess wall time, {runs} runs each");
    println!(
        "{:<36} {:>10} {:>10} {:>10}",
        "command", "mean", "median", "p95"
    );
    for (name, s) in rows {
        println!(
            "{name:<36} {:>10} {:>10} {:>10}",
            ms(s.mean),
            ms(s.median),
            ms(s.p95)
        );
    }
}

fn api_overhead() {
    let seed: Seed = mdops::sim::seed::parse(SEED, "toml").unwrap();
    let sim = BackgroundSim::start(&seed, Behaviour::default()).unwrap();
    let url = url::Url::parse(&sim.url()).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let calls = scaled(3000) as u32;
    let tokens_url = format!("{}v1/users/etl_pipeline/tokens", url);

    mdops::api::install_crypto_provider();
    // Baseline: the bare HTTP round trip, read to bytes, in an async loop.
    let raw = reqwest::Client::builder()
        .tcp_nodelay(true)
        .build()
        .unwrap();
    let baseline = rt.block_on(async {
        for _ in 0..200 {
            raw.get(&tokens_url)
                .bearer_auth("bench-admin")
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
        }
        let start = Instant::now();
        for _ in 0..calls {
            raw.get(&tokens_url)
                .bearer_auth("bench-admin")
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
        }
        start.elapsed() / calls
    });

    // The typed client: URL building, validation, JSON decoding into models.
    let config = ClientConfig::new(url.clone(), SecretString::new("bench-admin"));
    let client = Client::new(config.clone()).unwrap();
    let typed = rt.block_on(async {
        for _ in 0..200 {
            client.list_tokens("etl_pipeline").await.unwrap();
        }
        let start = Instant::now();
        for _ in 0..calls {
            client.list_tokens("etl_pipeline").await.unwrap();
        }
        start.elapsed() / calls
    });

    // The whole script path: Rhai call → binding → bridge (block_on from a
    // non-runtime thread) → client → maps with derived fields back in Rhai.
    let bridge = Bridge::new(
        rt.handle().clone(),
        Default::default(),
        Duration::from_secs(60),
    );
    let host = Host::new(Arc::new(Runtime::new(
        Some(ApiAccess::new(config)),
        bridge,
        RunOptions::default(),
        StateLocation::Memory,
        None,
    )));
    let sources = Arc::new(Sources::default());
    // The engine holds the host weakly (a run owns it): keep it alive here.
    let engine = script::engine(Some(host.clone()), sources.clone(), PrintTo::Stderr);
    let loop_of = |n: u32| {
        let text = format!(
            "let n = 0; for i in 0..{n} {{ n += tokens::list(\"etl_pipeline\").len(); }} n"
        );
        script::compile(&engine, "bench.rhai", &text, &sources).unwrap()
    };
    let (warm, measured) = (loop_of(scaled(200) as u32), loop_of(calls));
    engine.eval_ast::<i64>(&warm).unwrap();
    let start = Instant::now();
    assert_eq!(engine.eval_ast::<i64>(&measured).unwrap(), 3 * calls as i64);
    let scripted = start.elapsed() / calls;

    println!("\nOne API call (GET tokens, 3 tokens) against the local emulator, {calls} sequential calls");
    println!("{:<44} {:>10} {:>16}", "path", "per call", "over baseline");
    println!(
        "{:<44} {:>10} {:>16}",
        "raw reqwest, async loop (baseline)",
        us(baseline),
        "-"
    );
    println!(
        "{:<44} {:>10} {:>16}",
        "mdops typed client, async loop",
        us(typed),
        us(typed.saturating_sub(baseline))
    );
    println!(
        "{:<44} {:>10} {:>16}",
        "Rhai tokens::list via bridge",
        us(scripted),
        us(scripted.saturating_sub(baseline))
    );
}

/// Time from spawning `mdops --sandbox repl` in a pseudo-terminal until its
/// prompt appears, and the cost of one completion request.
fn repl_latency() {
    let bin = env!("CARGO_BIN_EXE_mdops");
    let dir = tempfile::tempdir().unwrap();
    let runs = scaled(20);
    let mut samples = Vec::new();
    for _ in 0..runs + 1 {
        use std::io::{Read, Write};
        let mut c = Command::new(bin);
        c.args(["--sandbox", "repl"])
            .env("MDOPS_HOME", dir.path())
            .env("TERM", "xterm");
        let start = Instant::now();
        // Read the pseudo-terminal directly (blocking), so the time is not
        // quantized by an expect library's polling interval.
        let child = rexpect::process::PtyProcess::new(c).unwrap();
        let mut pty = child.get_file_handle().unwrap();
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&seen).contains("mdops> ") {
            let n = pty.read(&mut buf).unwrap();
            assert!(n > 0, "the REPL ended before its prompt");
            seen.extend_from_slice(&buf[..n]);
        }
        samples.push(start.elapsed());
        let _ = pty.write_all(&[4]);
        let _ = child.wait();
    }
    samples.remove(0);
    let prompt = stats(samples);

    let sources = Arc::new(Sources::default());
    let engine = script::engine(None, sources, PrintTo::Stderr);
    let mut known = mdops::repl::Known::new(script::docs::functions(&engine));
    for i in 0..50 {
        known.variables.insert(
            format!("var_{i}"),
            (0..20).map(|k| format!("key_{k}")).collect(),
        );
    }
    let lines = [
        "tokens::",
        "let x = acc",
        "var_7.key_1",
        "ducklings::up",
        ":he",
        "pri",
    ];
    let n = 20_000;
    let start = Instant::now();
    let mut total = 0;
    for i in 0..n {
        let line = lines[i % lines.len()];
        total += mdops::repl::complete(&known, line, line.len()).1.len();
        total += mdops::repl::hint(&known, "tokens::create(\"a\", ", 20).map_or(0, |h| h.len());
    }
    let per = start.elapsed() / n as u32;
    assert!(total > 0);
    println!("\nREPL");
    println!(
        "{:<44} {:>10} {:>10} {:>10}",
        "measure", "mean", "median", "p95"
    );
    println!(
        "{:<44} {:>10} {:>10} {:>10}",
        format!("spawn to prompt (pty, --sandbox), {runs} runs"),
        ms(prompt.mean),
        ms(prompt.median),
        ms(prompt.p95)
    );
    println!(
        "{:<44} {:>10}",
        "one completion + one hint (20,000 calls)",
        us(per)
    );
}

/// `n`, or 2 with MDOPS_BENCH_SMOKE set: CI runs every path once or twice
/// (`cargo test --bench overhead`) so that the bench cannot rot unnoticed.
fn scaled(n: usize) -> usize {
    if std::env::var_os("MDOPS_BENCH_SMOKE").is_some() {
        n.min(2)
    } else {
        n
    }
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` would pass nothing useful.
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    process_startup();
    api_overhead();
    repl_latency();
}
