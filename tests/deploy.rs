//! The deployment recipes in `deploy/`: each one parses, keeps the promises
//! the README makes of it (no token on the command line, one run at a time,
//! quiet JSON logs, a non-root user), and runs a command line that mdops's
//! own argument parser accepts, with arguments the workflow's declared
//! parameters accept.

use clap::Parser;
use mdops::cli::{Cli, Command};
use std::path::{Path, PathBuf};

fn recipe(path: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("deploy")
            .join(path),
    )
    .unwrap_or_else(|e| panic!("deploy/{path}: {e}"))
}

fn yaml(path: &str) -> serde_json::Value {
    serde_norway::from_str(&recipe(path)).unwrap_or_else(|e| panic!("deploy/{path}: {e}"))
}

/// Splits a command line as systemd and sh do for these recipes: words
/// separated by spaces, double quotes grouping.
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    let mut started = false;
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                started = true;
            }
            ' ' if !quoted => {
                if started {
                    out.push(std::mem::take(&mut word));
                    started = false;
                }
            }
            _ => {
                word.push(c);
                started = true;
            }
        }
    }
    assert!(!quoted, "unbalanced quotes in {line}");
    if started {
        out.push(word);
    }
    out
}

/// Parses `argv` as mdops does, and checks the workflow's arguments against
/// its declared parameters (paths on the target machine aside).
fn accepted(argv: &[String]) -> Cli {
    let cli = Cli::try_parse_from(argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
    assert!(cli.global.quiet, "cron output stays quiet: {argv:?}");
    assert_eq!(
        format!("{:?}", cli.global.log_format),
        "Json",
        "logs a collector can read: {argv:?}"
    );
    assert!(
        !argv
            .iter()
            .any(|a| a.contains("postgres") || a.contains("ADMIN_TOKEN=")),
        "no credential or state URL on the command line: {argv:?}"
    );
    if let Command::Run(run) = &cli.command {
        let text = mdops::catalog::script(&run.script)
            .unwrap_or_else(|| panic!("{} is not a bundled workflow", run.script));
        let declared = mdops::script::params::extract(text, &run.script)
            .unwrap()
            .expect("bundled workflows declare their parameters");
        if let Err(problems) = declared.bind(&run.flags.args) {
            let real: Vec<&String> = problems
                .iter()
                .filter(|p| !p.contains("does not exist") && !p.contains("not a directory"))
                .collect();
            assert!(real.is_empty(), "{argv:?}: {real:?}");
        }
    }
    cli
}

#[test]
fn kubernetes_cronjob() {
    let job = yaml("kubernetes/cronjob.yaml");
    assert_eq!(job["kind"], "CronJob");
    assert_eq!(job["spec"]["concurrencyPolicy"], "Forbid");
    let pod = &job["spec"]["jobTemplate"]["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    let c = &pod["containers"][0];
    let mut argv = vec!["mdops".to_string()];
    argv.extend(
        c["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_string()),
    );
    let cli = accepted(&argv);
    // The admin token: a file from a Secret volume, mounted read-only.
    let token_file = cli.global.token_file.expect("--token-file");
    let mount = c["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| token_file.starts_with(m["mountPath"].as_str().unwrap()))
        .expect("the token file is on a mounted volume");
    assert_eq!(mount["readOnly"], true);
    let volume = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == mount["name"])
        .unwrap();
    assert!(volume["secret"]["secretName"].is_string(), "{volume}");
    // The state URL: from a Secret, in the environment.
    let env = c["env"].as_array().unwrap();
    let state = env
        .iter()
        .find(|e| e["name"] == "MDOPS_STATE_URL")
        .expect("MDOPS_STATE_URL");
    assert!(state["valueFrom"]["secretKeyRef"]["name"].is_string());
}

#[test]
fn systemd_service_and_timer() {
    let service = recipe("systemd/mdops-rotate.service");
    let exec = service
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart");
    let argv: Vec<String> = words(exec)
        .into_iter()
        .map(|w| {
            w.replace(
                "${CREDENTIALS_DIRECTORY}",
                "/run/credentials/mdops-rotate.service",
            )
        })
        .collect();
    assert_eq!(argv[0], "/usr/local/bin/mdops");
    let cli = accepted(&argv);
    assert!(cli.global.token_file.is_some());
    for line in [
        "Type=oneshot",
        "LoadCredential=admin-token:",
        "EnvironmentFile=",
        "UMask=0077",
        "KillMode=mixed",
    ] {
        assert!(service.contains(line), "{line}");
    }
    let timer = recipe("systemd/mdops-rotate.timer");
    for line in ["OnCalendar=", "Persistent=true", "WantedBy=timers.target"] {
        assert!(timer.contains(line), "{line}");
    }
    // Where systemd's own checker is installed, it must agree.
    if let Some(analyze) = which("systemd-analyze") {
        let dir = tempfile::tempdir().unwrap();
        let bin = env!("CARGO_BIN_EXE_mdops");
        std::fs::write(
            dir.path().join("mdops-rotate.service"),
            service.replace("/usr/local/bin/mdops", bin),
        )
        .unwrap();
        std::fs::write(dir.path().join("mdops-rotate.timer"), &timer).unwrap();
        let out = std::process::Command::new(analyze)
            .args(["verify", "--man=no"])
            .arg(dir.path().join("mdops-rotate.service"))
            .arg(dir.path().join("mdops-rotate.timer"))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        // Only complaints about these two units count (the host's own units,
        // or a machine without systemd running, are not theirs).
        let ours: Vec<&str> = stderr
            .lines()
            .filter(|l| l.contains("mdops-rotate"))
            .collect();
        assert!(ours.is_empty(), "systemd-analyze verify: {stderr}");
    }
}

#[test]
fn github_actions_workflow() {
    let wf = yaml("github/mdops-rotate.yml");
    // serde_norway reads the key `on` as the string "on".
    let on = &wf["on"];
    assert!(on["schedule"][0]["cron"].is_string(), "{wf}");
    assert!(
        wf["concurrency"]["group"].is_string(),
        "one rotation at a time"
    );
    assert_eq!(
        wf["concurrency"]["cancel-in-progress"], false,
        "a rotation is never cut short"
    );
    let job = wf["jobs"].as_object().unwrap().values().next().unwrap();
    let step = job["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["run"].as_str().is_some_and(|r| r.starts_with("mdops ")))
        .expect("a step running mdops");
    let argv = words(step["run"].as_str().unwrap().trim());
    accepted(&argv);
    let env = step["env"].as_object().unwrap();
    for key in ["MOTHERDUCK_ADMIN_TOKEN", "MDOPS_STATE_URL", "PGPASSWORD"] {
        assert!(
            env[key].as_str().unwrap().starts_with("${{ secrets."),
            "{key} comes from the repository's secrets"
        );
    }
}

#[test]
fn dockerfile_is_multi_stage_and_runs_as_a_user() {
    let text = recipe("Dockerfile");
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .collect();
    let stages: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.starts_with("FROM "))
        .map(|(i, _)| i)
        .collect();
    assert!(stages.len() >= 2, "a build stage and a runtime stage");
    let runtime = &lines[*stages.last().unwrap()..];
    assert!(runtime.iter().any(|l| l.starts_with("COPY --from=")));
    let user = runtime
        .iter()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("USER in the runtime stage");
    assert!(
        !user.starts_with("root") && !user.starts_with("0"),
        "{user}"
    );
    assert!(runtime.contains(&"ENTRYPOINT [\"mdops\"]"));
    // Every path the build stage copies exists in the repository.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for l in &lines[..stages[1]] {
        if let Some(rest) = l.strip_prefix("COPY ") {
            let parts: Vec<&str> = rest.split_whitespace().collect();
            for src in &parts[..parts.len() - 1] {
                assert!(root.join(src).exists(), "COPY {src}: not in the repository");
            }
        }
    }
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}
