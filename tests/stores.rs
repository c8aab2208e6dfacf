//! Rotated tokens delivered straight into secret stores: the store holds the
//! live successor, its other fields untouched; a failed verification puts the
//! store back; credentials the store refuses stop the run before anything is
//! minted; and no store credential or token appears in mdops's output.

use crate::support::vault::{Vault, TOKEN};
use crate::support::{json_result, Cmd, Env};
use serde_json::json;

const SEED: &str = r#"
admin_token = "test-admin-token-0123456789"
[[accounts]]
username = "tenant_a"
tokens = [{ name = "app", age = "100d" }]
[[accounts]]
username = "tenant_b"
tokens = [{ name = "app", age = "100d" }]
"#;

/// `mdops` with Vault's environment.
fn with_vault(env: &Env, vault: &Vault) -> Cmd {
    env.mdops()
        .env("VAULT_ADDR", &vault.url)
        .env("VAULT_TOKEN", TOKEN)
        .env("VAULT_NAMESPACE", "team-data")
}

fn no_secret_in(out: &crate::support::Output, env: &Env) {
    for (account, tokens) in [
        ("tenant_a", env.live("tenant_a")),
        ("tenant_b", env.live("tenant_b")),
    ] {
        for (_, secret) in tokens {
            assert!(
                !out.stdout.contains(&secret) && !out.stderr.contains(&secret),
                "{account}'s token shown: {out:?}"
            );
        }
    }
    assert!(
        !out.stdout.contains(TOKEN) && !out.stderr.contains(TOKEN),
        "{out:?}"
    );
}

#[test]
fn to_vault_replaces_one_field_with_check_and_set_and_reads_back() {
    let env = Env::with_seed(SEED);
    let vault = Vault::start();
    vault.put(
        "secret",
        "md/app",
        json!({"token": "old-value", "user": "svc_app"}),
    );
    let out = with_vault(&env, &vault)
        .args([
            "eval",
            r#"let d = secrets::to_vault("md/app", "new-value"); [d.sink, d.previous.reveal()]"#,
        ])
        .stdout("vault:secret/md/app#token\nold-value\n")
        .run();
    assert!(out.stderr.is_empty());
    let (data, versions) = vault.get("secret", "md/app").unwrap();
    assert_eq!(
        data,
        *json!({"token": "new-value", "user": "svc_app"})
            .as_object()
            .unwrap()
    );
    assert_eq!(versions, 2);
    let seen = vault.seen();
    let write = seen.iter().find(|s| s.method == "POST").unwrap();
    assert_eq!(write.cas, Some(1), "checked against the version read");
    assert!(seen
        .iter()
        .all(|s| s.namespace.as_deref() == Some("team-data")));
    assert_eq!(
        seen.iter().map(|s| s.method.as_str()).collect::<Vec<_>>(),
        ["GET", "POST", "GET"],
        "read, write, read back"
    );
    // Another mount and field; a secret that does not exist yet is created (cas 0).
    with_vault(&env, &vault)
        .args([
            "eval",
            r#"secrets::to_vault("apps/b", "v", #{mount: "kv", field: "MD_TOKEN"}).sink"#,
        ])
        .stdout("vault:kv/apps/b#MD_TOKEN\n")
        .run();
    assert_eq!(vault.seen().iter().rev().nth(1).unwrap().cas, Some(0));
    assert_eq!(vault.get("kv", "apps/b").unwrap().0["MD_TOKEN"], "v");
}

#[test]
fn a_path_that_would_leave_its_place_is_refused_before_any_request() {
    let env = Env::with_seed(SEED);
    let vault = Vault::start();
    for path in ["md/../sys/policy", "md/a\tb", "md//x"] {
        with_vault(&env, &vault)
            .args(["eval", &format!("secrets::to_vault({path:?}, \"v\")")])
            .status(1)
            .stderr_has(&["vault path"])
            .run();
    }
    assert!(vault.seen().is_empty());
}

#[test]
fn rotation_into_vault_leaves_the_live_successor_there() {
    let env = Env::with_seed(SEED);
    let vault = Vault::start();
    vault.put(
        "secret",
        "md/tenant_a",
        json!({"token": "whatever", "note": "keep me"}),
    );
    let rotate = || {
        with_vault(&env, &vault).args([
            "run",
            "rotate-tokens",
            "--arg",
            "accounts=tenant_a,tenant_b",
            "--arg",
            "sink=vault",
            "--arg",
            "vault_path=md/{account}",
        ])
    };
    let out = rotate()
        .stdout_has(&["tenant_a", "rotated", "tenant_b", "rotated"])
        .any_stderr()
        .run();
    for account in ["tenant_a", "tenant_b"] {
        let tokens = env.live(account);
        assert_eq!(tokens.len(), 1, "{account}: {tokens:?}");
        assert_eq!(tokens[0].0, "app.g1");
        let (data, _) = vault.get("secret", &format!("md/{account}")).unwrap();
        assert_eq!(data["token"], tokens[0].1.as_str(), "{account}");
    }
    assert_eq!(
        vault.get("secret", "md/tenant_a").unwrap().0["note"],
        "keep me"
    );
    no_secret_in(&out, &env);
    // Again: nothing is due, nothing changes.
    let writes = vault.seen().iter().filter(|s| s.method == "POST").count();
    rotate()
        .stdout_has(&["tenant_a", "tenant_b"])
        .any_stderr()
        .run();
    assert_eq!(
        vault.seen().iter().filter(|s| s.method == "POST").count(),
        writes
    );
    let journal = json_result(
        &env.mdops()
            .args(["journal", "--output", "json"])
            .any_stdout()
            .run(),
    );
    for e in journal.as_array().unwrap() {
        assert!(
            e["sink"].as_str().unwrap().starts_with("vault:secret/md/"),
            "{e}"
        );
        assert!(e["verified_at"].is_string(), "{e}");
    }
}

#[test]
fn a_failed_verification_puts_the_store_back() {
    let env = Env::with_seed(SEED);
    let vault = Vault::start();
    let old = env.live("tenant_a")[0].1.clone();
    vault.put(
        "secret",
        "md/tenant_a",
        json!({"token": old, "note": "keep me"}),
    );
    with_vault(&env, &vault)
        .args([
            "run",
            "rotate-tokens",
            "--arg",
            "accounts=tenant_a",
            "--arg",
            "sink=vault",
            "--arg",
            "vault_path=md/{account}",
            "--arg",
            "verify_command=false",
        ])
        .status(4)
        .stdout_has(&["tenant_a", "failed"])
        .any_stderr()
        .run();
    assert_eq!(
        env.live("tenant_a"),
        [("app".to_string(), old.clone())],
        "the old token stays, the new one is revoked"
    );
    let (data, versions) = vault.get("secret", "md/tenant_a").unwrap();
    assert_eq!(data["token"], old.as_str(), "put back");
    assert_eq!(data["note"], "keep me");
    assert_eq!(versions, 3, "the put-back is a new version");
}

#[test]
fn credentials_the_store_refuses_stop_the_run_before_anything_is_minted() {
    let env = Env::with_seed(SEED);
    let vault = Vault::start();
    let out = env
        .mdops()
        .env("VAULT_ADDR", &vault.url)
        .env("VAULT_TOKEN", "hvs.wrong-token-000000")
        .args([
            "run",
            "rotate-tokens",
            "--arg",
            "accounts=tenant_a",
            "--arg",
            "sink=vault",
            "--arg",
            "vault_path=md/{account}",
        ])
        .status(2)
        .stderr_has(&[
            "refusing to mint anything",
            "Vault refused the token (403)",
            "set VAULT_TOKEN",
        ])
        .any_stdout()
        .run();
    assert!(!out.stderr.contains("hvs.wrong-token"), "{out:?}");
    assert!(
        !env.sim.requests().iter().any(|r| r.method == "POST"),
        "nothing minted"
    );
    // Without VAULT_ADDR, the same: the variable to set is named.
    env.mdops()
        .args([
            "run",
            "rotate-tokens",
            "--arg",
            "accounts=tenant_a",
            "--arg",
            "sink=vault",
            "--arg",
            "vault_path=md/{account}",
        ])
        .status(2)
        .stderr_has(&["VAULT_ADDR is not set"])
        .any_stdout()
        .run();
    assert!(!env.sim.requests().iter().any(|r| r.method == "POST"));
}

#[test]
fn a_store_that_fails_the_write_leaves_no_orphan_token() {
    let env = Env::with_seed(SEED);
    let vault = Vault::start();
    vault.inner.lock().unwrap().fail_writes = true;
    let old = env.live("tenant_a")[0].1.clone();
    with_vault(&env, &vault)
        .args([
            "run",
            "rotate-tokens",
            "--arg",
            "accounts=tenant_a",
            "--arg",
            "sink=vault",
            "--arg",
            "vault_path=md/{account}",
        ])
        .status(4)
        .stdout_has(&[
            "tenant_a",
            "failed",
            "delivery failed: Vault: write: still failing after 4 attempts: 500",
        ])
        .any_stderr()
        .run();
    assert_eq!(
        env.live("tenant_a"),
        [("app".to_string(), old)],
        "the new token was revoked"
    );
}

use crate::support::github::{Github, TOKEN as GITHUB_TOKEN};
use crate::support::k8s::{K8s, TOKEN as K8S_TOKEN};

fn with_k8s(env: &Env, k8s: &K8s) -> Cmd {
    let token = env.home.path().join("k8s.token");
    std::fs::write(&token, format!("{K8S_TOKEN}\n")).unwrap();
    env.mdops()
        .env("MDOPS_K8S_SERVER", &k8s.url)
        .env("MDOPS_K8S_TOKEN_FILE", token.to_str().unwrap())
}

fn with_github(env: &Env, gh: &Github) -> Cmd {
    env.mdops()
        .env("GITHUB_API_URL", &gh.url)
        .env("GITHUB_TOKEN", GITHUB_TOKEN)
}

#[test]
fn to_k8s_patches_one_key_against_the_version_read() {
    let env = Env::with_seed(SEED);
    let k8s = K8s::start();
    k8s.put(
        "apps",
        "app-md",
        &[("MOTHERDUCK_TOKEN", "old"), ("OTHER", "keep")],
    );
    with_k8s(&env, &k8s)
        .args([
            "eval",
            r#"let d = secrets::to_k8s("apps", "app-md", "new"); [d.sink, d.previous.reveal()]"#,
        ])
        .stdout("k8s:apps/app-md#MOTHERDUCK_TOKEN\nold\n")
        .run();
    let values = k8s.get("apps", "app-md").unwrap();
    assert_eq!(values["MOTHERDUCK_TOKEN"], "new");
    assert_eq!(values["OTHER"], "keep");
    let seen = k8s.seen();
    let patch = seen.iter().find(|s| s.method == "PATCH").unwrap();
    assert_eq!(
        patch.content_type.as_deref(),
        Some("application/merge-patch+json")
    );
    let body: serde_json::Value = serde_json::from_str(&patch.body).unwrap();
    assert!(body["metadata"]["resourceVersion"].is_string(), "{body}");
    assert_eq!(
        body["data"].as_object().unwrap().len(),
        1,
        "only the one key: {body}"
    );
    // A Secret that does not exist is created, with the key given.
    with_k8s(&env, &k8s)
        .args([
            "eval",
            r#"secrets::to_k8s("apps", "fresh", "v", #{key: "TOKEN"}).sink"#,
        ])
        .stdout("k8s:apps/fresh#TOKEN\n")
        .run();
    assert_eq!(k8s.get("apps", "fresh").unwrap()["TOKEN"], "v");
    // Names Kubernetes would refuse are refused before any request.
    let before = k8s.seen().len();
    with_k8s(&env, &k8s)
        .args([
            "eval",
            r#"secrets::to_k8s("apps", "../kube-system/x", "v")"#,
        ])
        .status(1)
        .stderr_has(&["Kubernetes secret name"])
        .run();
    assert_eq!(k8s.seen().len(), before);
}

#[test]
fn rotation_into_kubernetes_secrets_and_back_when_verification_fails() {
    let env = Env::with_seed(SEED);
    let k8s = K8s::start();
    k8s.put(
        "apps",
        "tenant-a-motherduck",
        &[("MOTHERDUCK_TOKEN", "stale"), ("HOST", "md")],
    );
    let rotate = |extra: &[&str]| {
        let mut args = vec![
            "run",
            "rotate-tokens",
            "--arg",
            "accounts=tenant_a,tenant_b",
            "--arg",
            "sink=k8s",
            "--arg",
            "k8s_namespace=apps",
        ];
        args.extend_from_slice(extra);
        with_k8s(&env, &k8s).args(args)
    };
    let out = rotate(&[])
        .stdout_has(&["tenant_a", "rotated", "tenant_b", "rotated"])
        .any_stderr()
        .run();
    for (account, secret) in [
        ("tenant_a", "tenant-a-motherduck"),
        ("tenant_b", "tenant-b-motherduck"),
    ] {
        let tokens = env.live(account);
        assert_eq!(tokens.len(), 1);
        assert_eq!(
            k8s.get("apps", secret).unwrap()["MOTHERDUCK_TOKEN"],
            tokens[0].1,
            "{account}"
        );
    }
    assert_eq!(
        k8s.get("apps", "tenant-a-motherduck").unwrap()["HOST"],
        "md"
    );
    no_secret_in(&out, &env);
    // A rotation whose verification fails puts the Secret back.
    let env2 = Env::with_seed(SEED);
    let k8s2 = K8s::start();
    let old = env2.live("tenant_a")[0].1.clone();
    k8s2.put("apps", "tenant-a-motherduck", &[("MOTHERDUCK_TOKEN", &old)]);
    with_k8s(&env2, &k8s2)
        .args([
            "run",
            "rotate-tokens",
            "--arg",
            "accounts=tenant_a",
            "--arg",
            "sink=k8s",
            "--arg",
            "k8s_namespace=apps",
            "--arg",
            "verify_command=false",
        ])
        .status(4)
        .stdout_has(&["tenant_a", "failed"])
        .any_stderr()
        .run();
    assert_eq!(env2.live("tenant_a"), [("app".to_string(), old.clone())]);
    assert_eq!(
        k8s2.get("apps", "tenant-a-motherduck").unwrap()["MOTHERDUCK_TOKEN"],
        old
    );
}

#[test]
fn to_github_seals_the_secret_to_the_repository_key() {
    let env = Env::with_seed(SEED);
    let gh = Github::start();
    with_github(&env, &gh)
        .args([
            "eval",
            r#"let d = secrets::to_github("acme/app", "MD_TOKEN", "s3cret"); [d.sink, d.previous]"#,
        ])
        .stdout("github:acme/app#MD_TOKEN\n-\n")
        .run();
    assert_eq!(
        gh.value("acme/app", "", "MD_TOKEN").as_deref(),
        Some("s3cret"),
        "decrypted with the repository's key"
    );
    with_github(&env, &gh)
        .args([
            "eval",
            r#"secrets::to_github("acme/app", "MD_TOKEN", "again", #{environment: "prod"}).sink"#,
        ])
        .stdout("github:acme/app@prod#MD_TOKEN\n")
        .run();
    assert_eq!(
        gh.value("acme/app", "prod", "MD_TOKEN").as_deref(),
        Some("again")
    );
    assert_eq!(
        gh.value("acme/app", "", "MD_TOKEN").as_deref(),
        Some("s3cret")
    );
    for (bad, what) in [("acme", "OWNER/NAME"), ("acme/../x", "OWNER/NAME")] {
        with_github(&env, &gh)
            .args([
                "eval",
                &format!("secrets::to_github({bad:?}, \"X\", \"v\")"),
            ])
            .status(1)
            .stderr_has(&[what])
            .run();
    }
    with_github(&env, &gh)
        .args(["eval", r#"secrets::to_github("acme/app", "GITHUB_X", "v")"#])
        .status(1)
        .stderr_has(&["not starting with a digit or GITHUB_"])
        .run();
}

#[test]
fn rotation_into_github_secrets_keeps_the_old_token_when_verification_fails() {
    let env = Env::with_seed(SEED);
    let gh = Github::start();
    let out = with_github(&env, &gh)
        .args([
            "run",
            "rotate-tokens",
            "--arg",
            "accounts=tenant_a,tenant_b",
            "--arg",
            "sink=github",
            "--arg",
            "github_repo=acme/app",
        ])
        .stdout_has(&["tenant_a", "rotated", "tenant_b", "rotated"])
        .any_stderr()
        .run();
    for (account, name) in [
        ("tenant_a", "MOTHERDUCK_TOKEN_TENANT_A"),
        ("tenant_b", "MOTHERDUCK_TOKEN_TENANT_B"),
    ] {
        let tokens = env.live(account);
        assert_eq!(tokens.len(), 1);
        assert_eq!(
            gh.value("acme/app", "", name).as_deref(),
            Some(tokens[0].1.as_str()),
            "{account}"
        );
    }
    no_secret_in(&out, &env);
    let env2 = Env::with_seed(SEED);
    let old = env2.live("tenant_a")[0].1.clone();
    with_github(&env2, &gh)
        .args([
            "run",
            "rotate-tokens",
            "--arg",
            "accounts=tenant_a",
            "--arg",
            "sink=github",
            "--arg",
            "github_repo=acme/other",
            "--arg",
            "verify_command=false",
        ])
        .status(4)
        .stdout_has(&[
            "tenant_a",
            "failed",
            "a GitHub secret cannot be read, so it cannot be put back",
        ])
        .any_stderr()
        .run();
    assert_eq!(
        env2.live("tenant_a"),
        [("app".to_string(), old)],
        "the old token is still live"
    );
}

#[test]
fn kubernetes_and_github_refusals_stop_the_run_before_anything_is_minted() {
    let env = Env::with_seed(SEED);
    let k8s = K8s::start();
    let wrong = env.home.path().join("wrong.token");
    std::fs::write(&wrong, "not-the-token\n").unwrap();
    env.mdops()
        .env("MDOPS_K8S_SERVER", &k8s.url)
        .env("MDOPS_K8S_TOKEN_FILE", wrong.to_str().unwrap())
        .args([
            "run",
            "rotate-tokens",
            "--arg",
            "accounts=tenant_a",
            "--arg",
            "sink=k8s",
            "--arg",
            "k8s_namespace=apps",
        ])
        .status(2)
        .stderr_has(&[
            "refusing to mint anything",
            "Kubernetes refused the token (401)",
        ])
        .any_stdout()
        .run();
    let gh = Github::start();
    let out = env
        .mdops()
        .env("GITHUB_API_URL", &gh.url)
        .env("GITHUB_TOKEN", "ghp_wrong000000000000")
        .args([
            "run",
            "rotate-tokens",
            "--arg",
            "accounts=tenant_a",
            "--arg",
            "sink=github",
            "--arg",
            "github_repo=acme/app",
        ])
        .status(2)
        .stderr_has(&[
            "refusing to mint anything",
            "GitHub refused GITHUB_TOKEN (401)",
        ])
        .any_stdout()
        .run();
    assert!(!out.stderr.contains("ghp_wrong"), "{out:?}");
    env.mdops()
        .args([
            "run",
            "rotate-tokens",
            "--arg",
            "accounts=tenant_a",
            "--arg",
            "sink=k8s",
            "--arg",
            "k8s_namespace=apps",
        ])
        .status(2)
        .stderr_has(&["MDOPS_K8S_SERVER is not set"])
        .any_stdout()
        .run();
    assert!(
        !env.sim.requests().iter().any(|r| r.method == "POST"),
        "nothing minted"
    );
}

use crate::support::moto;

fn with_aws(env: &Env, endpoint: &str) -> Cmd {
    env.mdops()
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ACCESS_KEY_ID", "AKIDTESTING0000000000")
        .env(
            "AWS_SECRET_ACCESS_KEY",
            "aws-secret-key-do-not-show-0000000000",
        )
        .env("AWS_REGION", "us-east-1")
        .env("HOME", env.home.path().to_str().unwrap())
}

fn aws_value(endpoint: &str, id: &str, stage: &str) -> serde_json::Value {
    moto::call(
        endpoint,
        "GetSecretValue",
        json!({"SecretId": id, "VersionStage": stage}),
    )
}

#[test]
fn to_aws_puts_a_new_current_version_and_keeps_the_previous() {
    let Some(ep) = moto::endpoint("to_aws_puts_a_new_current_version_and_keeps_the_previous")
    else {
        return;
    };
    let env = Env::with_seed(SEED);
    let id = format!("md/whole-{}", std::process::id());
    with_aws(&env, &ep)
        .args(["eval", &format!("secrets::to_aws({id:?}, \"first\").sink")])
        .stdout(&format!("aws:{id}\n"))
        .run();
    let out = with_aws(&env, &ep)
        .args([
            "eval",
            &format!("secrets::to_aws({id:?}, \"second\").previous.reveal()"),
        ])
        .stdout("first\n")
        .run();
    assert!(!out.stderr.contains("aws-secret-key"), "{out:?}");
    assert_eq!(aws_value(&ep, &id, "AWSCURRENT")["SecretString"], "second");
    assert_eq!(aws_value(&ep, &id, "AWSPREVIOUS")["SecretString"], "first");
    // Delivering the previous value again moves AWSCURRENT back to its version.
    let before = aws_value(&ep, &id, "AWSPREVIOUS")["VersionId"].clone();
    with_aws(&env, &ep)
        .args(["eval", &format!("secrets::to_aws({id:?}, \"first\").sink")])
        .any_stdout()
        .run();
    let now = aws_value(&ep, &id, "AWSCURRENT");
    assert_eq!(now["SecretString"], "first");
    assert_eq!(now["VersionId"], before, "the same version, not a new one");
    // One field of a JSON secret, the others kept.
    let json_id = format!("md/json-{}", std::process::id());
    moto::call(
        &ep,
        "CreateSecret",
        json!({"Name": json_id, "SecretString": "{\"user\":\"svc\",\"token\":\"old\"}"}),
    );
    with_aws(&env, &ep)
        .args([
            "eval",
            &format!(
                "secrets::to_aws({json_id:?}, \"new\", #{{field: \"token\"}}).previous.reveal()"
            ),
        ])
        .stdout("old\n")
        .run();
    let doc: serde_json::Value = serde_json::from_str(
        aws_value(&ep, &json_id, "AWSCURRENT")["SecretString"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(doc, json!({"user": "svc", "token": "new"}));
}

/// Moto behind a door that holds the first read of secret `id` until a
/// second read of it arrives (two writers at once), or for two seconds (they
/// take turns). Returns the door's URL and how many times reads overlapped.
fn door_holding_the_first_read(
    moto_url: &str,
    id: &str,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use axum::body::Bytes;
    use axum::http::HeaderMap;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let overlapped = Arc::new(AtomicUsize::new(0));
    let reads = Arc::new(AtomicUsize::new(0));
    let second = Arc::new(tokio::sync::Notify::new());
    let (moto_url, id, seen) = (moto_url.to_string(), id.to_string(), overlapped.clone());
    let app = axum::Router::new().route(
        "/",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let (moto_url, id, seen) = (moto_url.clone(), id.clone(), seen.clone());
            let (reads, second) = (reads.clone(), second.clone());
            async move {
                let read = headers
                    .get("x-amz-target")
                    .is_some_and(|t| t.as_bytes().ends_with(b"GetSecretValue"));
                let doc: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                if read && doc["SecretId"] == id.as_str() {
                    if reads.fetch_add(1, Ordering::SeqCst) == 0 {
                        let wait = std::time::Duration::from_secs(2);
                        if tokio::time::timeout(wait, second.notified()).await.is_ok() {
                            seen.fetch_add(1, Ordering::SeqCst);
                        }
                    } else {
                        second.notify_one();
                    }
                }
                let mut forward = reqwest::Client::new().post(&moto_url).body(body);
                for (k, v) in &headers {
                    if k != "host" && k != "content-length" {
                        forward = forward.header(k.as_str(), v.as_bytes());
                    }
                }
                let answer = forward.send().await.unwrap();
                let status = answer.status().as_u16();
                let bytes = answer.bytes().await.unwrap();
                (axum::http::StatusCode::from_u16(status).unwrap(), bytes)
            }
        }),
    );
    (crate::support::serve(app), overlapped)
}

/// Workers of one run writing fields of one AWS secret take turns: each
/// reads, changes its field and puts the whole secret back, so two at once
/// would each drop the other's field, and a live token with it.
#[test]
fn fields_of_one_aws_secret_are_written_in_turn() {
    let Some(ep) = moto::endpoint("fields_of_one_aws_secret_are_written_in_turn") else {
        return;
    };
    let env = Env::with_seed(SEED);
    let id = format!("md/fields-{}", std::process::id());
    moto::call(
        &ep,
        "CreateSecret",
        json!({"Name": id, "SecretString": "{}"}),
    );
    let (door, overlapped) = door_holding_the_first_read(&ep, &id);
    let script = format!(
        "parallel([\"tenant_a\", \"tenant_b\"], |a| {{ let t = tokens::create(a, #{{name: \"aws\"}}); secrets::to_aws({id:?}, t.token, #{{field: a}}); a }})"
    );
    with_aws(&env, &door)
        .args(["--concurrency", "2", "eval", &script])
        .any_stdout()
        .any_stderr()
        .run();
    assert_eq!(
        overlapped.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "read at once"
    );
    let doc: serde_json::Value = serde_json::from_str(
        aws_value(&ep, &id, "AWSCURRENT")["SecretString"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    for account in ["tenant_a", "tenant_b"] {
        let live: Vec<String> = env
            .live(account)
            .into_iter()
            .filter(|t| t.0 == "aws")
            .map(|t| t.1)
            .collect();
        assert_eq!(live.len(), 1, "{account}");
        assert_eq!(doc[account], live[0].as_str(), "{account}: {doc}");
    }
    // The whole secret after a field of it, in one run: the field's token
    // would be dropped with the field. Refused.
    let whole = format!(
        "let a = tokens::create(\"tenant_a\", \"f\"); secrets::to_aws({id:?}, a.token, #{{field: \"f\"}}); let b = tokens::create(\"tenant_b\", \"w\"); secrets::to_aws({id:?}, b.token);"
    );
    let out = with_aws(&env, &ep)
        .args(["eval", &whole])
        .any_stdout()
        .any_stderr()
        .output();
    assert!(out.stderr.contains("already holds token"), "{out:?}");
    let doc: serde_json::Value = serde_json::from_str(
        aws_value(&ep, &id, "AWSCURRENT")["SecretString"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let f: Vec<String> = env
        .live("tenant_a")
        .into_iter()
        .filter(|t| t.0 == "f")
        .map(|t| t.1)
        .collect();
    assert_eq!(f.len(), 1);
    assert_eq!(doc["f"], f[0].as_str(), "{doc}");
    assert!(
        env.live("tenant_b").iter().all(|t| t.0 != "w"),
        "the refused token was revoked"
    );
}

#[test]
fn rotation_into_aws_and_back_when_verification_fails() {
    let Some(ep) = moto::endpoint("rotation_into_aws_and_back_when_verification_fails") else {
        return;
    };
    let env = Env::with_seed(SEED);
    let prefix = format!("rot{}", std::process::id());
    let template = format!("aws_secret_id={prefix}/{{account}}");
    let out = with_aws(&env, &ep)
        .args([
            "run",
            "rotate-tokens",
            "--arg",
            "accounts=tenant_a,tenant_b",
            "--arg",
            "sink=aws",
            "--arg",
            &template,
        ])
        .stdout_has(&["tenant_a", "rotated", "tenant_b", "rotated"])
        .any_stderr()
        .run();
    for account in ["tenant_a", "tenant_b"] {
        let tokens = env.live(account);
        assert_eq!(tokens.len(), 1);
        assert_eq!(
            aws_value(&ep, &format!("{prefix}/{account}"), "AWSCURRENT")["SecretString"],
            tokens[0].1.as_str()
        );
    }
    no_secret_in(&out, &env);
    assert!(!out.stderr.contains("aws-secret-key"));
    // A failed verification: AWSCURRENT goes back to the version it was.
    let env2 = Env::with_seed(SEED);
    let old = env2.live("tenant_a")[0].1.clone();
    let id = format!("{prefix}b/tenant_a");
    moto::call(
        &ep,
        "CreateSecret",
        json!({"Name": id, "SecretString": old}),
    );
    let version = aws_value(&ep, &id, "AWSCURRENT")["VersionId"].clone();
    with_aws(&env2, &ep)
        .args([
            "run",
            "rotate-tokens",
            "--arg",
            "accounts=tenant_a",
            "--arg",
            "sink=aws",
            "--arg",
            &format!("aws_secret_id={prefix}b/{{account}}"),
            "--arg",
            "verify_command=false",
        ])
        .status(4)
        .stdout_has(&["tenant_a", "failed"])
        .any_stderr()
        .run();
    assert_eq!(env2.live("tenant_a"), [("app".to_string(), old.clone())]);
    let now = aws_value(&ep, &id, "AWSCURRENT");
    assert_eq!(now["SecretString"], old.as_str());
    assert_eq!(
        now["VersionId"], version,
        "AWSCURRENT moved back to the old version"
    );
}

#[test]
fn aws_without_credentials_stops_the_run_before_anything_is_minted() {
    let env = Env::with_seed(SEED);
    env.mdops()
        .env("AWS_REGION", "us-east-1")
        .env("HOME", env.home.path().to_str().unwrap())
        .args([
            "run",
            "rotate-tokens",
            "--arg",
            "accounts=tenant_a",
            "--arg",
            "sink=aws",
            "--arg",
            "aws_secret_id=md/{account}",
        ])
        .status(2)
        .stderr_has(&["AWS: no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"])
        .any_stdout()
        .run();
    assert!(!env.sim.requests().iter().any(|r| r.method == "POST"));
}

/// Review findings on the store sinks, each with its test.
///
/// A write that landed but reads back differently (a lagging standby) is
/// undone before the run revokes the new token: the store keeps the old one.
#[test]
fn a_write_that_cannot_be_confirmed_is_put_back() {
    let env = Env::with_seed(SEED);
    let vault = Vault::start();
    let old = env.live("tenant_a")[0].1.clone();
    vault.put(
        "secret",
        "md/tenant_a",
        json!({"token": old, "note": "keep"}),
    );
    vault.inner.lock().unwrap().stale_reads = true;
    with_vault(&env, &vault)
        .args([
            "run",
            "rotate-tokens",
            "--arg",
            "accounts=tenant_a",
            "--arg",
            "sink=vault",
            "--arg",
            "vault_path=md/{account}",
        ])
        .status(4)
        .stdout_has(&[
            "tenant_a",
            "failed",
            "reads back differently",
            "was put back as it was",
        ])
        .any_stderr()
        .run();
    vault.inner.lock().unwrap().stale_reads = false;
    let (data, _) = vault.get("secret", "md/tenant_a").unwrap();
    assert_eq!(
        data["token"],
        old.as_str(),
        "the store holds the live old token"
    );
    assert_eq!(data["note"], "keep");
    assert_eq!(env.live("tenant_a"), [("app".to_string(), old)]);
}

/// A KV version 1 mount would store the POST as another secret: refused.
#[test]
fn a_kv_version_1_mount_is_not_taken_for_version_2() {
    let env = Env::with_seed(SEED);
    let vault = Vault::start();
    vault.inner.lock().unwrap().kv1 = true;
    with_vault(&env, &vault)
        .args(["eval", r#"secrets::to_vault("md/x", "v")"#])
        .status(1)
        .stderr_has(&["not a KV version 2 secrets engine"])
        .run();
}

/// A secret whose latest version was deleted answers 404 with its version:
/// the write checks against that version, and succeeds.
#[test]
fn a_secret_whose_latest_version_was_deleted_can_be_written() {
    let env = Env::with_seed(SEED);
    let vault = Vault::start();
    vault.put("secret", "md/x", json!({"token": "a"}));
    vault.put("secret", "md/x", json!({"token": "b"}));
    vault.inner.lock().unwrap().deleted = true;
    with_vault(&env, &vault)
        .args(["eval", r#"secrets::to_vault("md/x", "c").sink"#])
        .stdout("vault:secret/md/x#token\n")
        .run();
    assert_eq!(
        vault.get("secret", "md/x").unwrap(),
        (json!({"token": "c"}).as_object().unwrap().clone(), 3)
    );
}

/// Commands never see the stores' credentials, and output never shows them.
#[test]
fn commands_never_inherit_store_credentials() {
    let env = Env::with_seed(SEED);
    let out = env
        .mdops()
        .env("VAULT_TOKEN", "hvs.vault-token-never-shown-0000")
        .env("GITHUB_TOKEN", "ghp_github-token-never-shown-000")
        .env("AWS_SECRET_ACCESS_KEY", "aws-secret-never-shown-00000000")
        .args(["eval", r#"let e = sh("env").stdout; [e.contains("VAULT_TOKEN"), e.contains("GITHUB_TOKEN"), e.contains("AWS_SECRET")]"#])
        .stdout("false\nfalse\nfalse\n")
        .run();
    assert!(!out.stdout.contains("never-shown"));
    // Printed by the script itself, the values are redacted.
    let out = env
        .mdops()
        .env("GITHUB_TOKEN", "ghp_github-token-never-shown-000")
        .args(["eval", r#"print("ghp_github-token-never-shown-000"); 1"#])
        .any_stdout()
        .run();
    assert!(!out.stdout.contains("never-shown"), "{out:?}");
}

/// A name one account cannot make blocks that account only.
#[test]
fn a_target_one_account_cannot_make_blocks_only_that_account() {
    let env = Env::with_seed(&format!(
        "{SEED}[[accounts]]\nusername = \"svc_\"\ntokens = [{{ name = \"app\", age = \"100d\" }}]\n"
    ));
    let k8s = K8s::start();
    with_k8s(&env, &k8s)
        .args([
            "run",
            "rotate-tokens",
            "--arg",
            "accounts=tenant_a,svc_",
            "--arg",
            "sink=k8s",
            "--arg",
            "k8s_namespace=apps",
            "--arg",
            "k8s_secret={account}",
        ])
        .status(4)
        .stdout_has(&["tenant_a", "rotated", "svc_", "Kubernetes secret name"])
        .any_stderr()
        .run();
    assert_eq!(env.live("tenant_a").len(), 1);
    assert_eq!(
        k8s.get("apps", "tenant-a").unwrap()["MOTHERDUCK_TOKEN"],
        env.live("tenant_a")[0].1
    );
}

/// provision-account takes the same store sinks: a new account's first
/// token goes straight into Vault, and running it again changes nothing.
#[test]
fn provisioning_delivers_the_first_token_into_a_store() {
    let env = Env::with_seed(SEED);
    let vault = Vault::start();
    let provision = || {
        with_vault(&env, &vault).args([
            "run",
            "provision-account",
            "--arg",
            "account=tenant_new",
            "--arg",
            "sink=vault",
            "--arg",
            "vault_path=md/{account}",
        ])
    };
    provision().stdout_has(&["tenant_new"]).any_stderr().run();
    let tokens = env.live("tenant_new");
    assert_eq!(tokens.len(), 1, "{tokens:?}");
    let (data, versions) = vault.get("secret", "md/tenant_new").unwrap();
    assert_eq!(data["token"], tokens[0].1.as_str());
    provision().stdout_has(&["tenant_new"]).any_stderr().run();
    assert_eq!(env.live("tenant_new").len(), 1, "nothing new minted");
    assert_eq!(
        vault.get("secret", "md/tenant_new").unwrap().1,
        versions,
        "nothing written"
    );
}

/// GitHub's secondary rate limit (403 with Retry-After) is waited out, not
/// taken for missing rights.
#[test]
fn a_rate_limited_store_is_waited_out() {
    let env = Env::with_seed(SEED);
    let gh = Github::start();
    gh.inner.lock().unwrap().throttle_next_put = true;
    let started = std::time::Instant::now();
    with_github(&env, &gh)
        .args([
            "eval",
            r#"secrets::to_github("acme/app", "MD_TOKEN", "v").sink"#,
        ])
        .stdout("github:acme/app#MD_TOKEN\n")
        .run();
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(1),
        "Retry-After honoured"
    );
    assert_eq!(gh.seen().iter().filter(|s| s.0 == "PUT").count(), 2);
    assert_eq!(gh.value("acme/app", "", "MD_TOKEN").as_deref(), Some("v"));
}

/// Killed (SIGKILL) while the store write is in flight: the write landed,
/// its answer never came. The token is journaled as being delivered before
/// the write, so the next run does not revoke it as one nobody received; it
/// replaces it with a verified successor, and the store ends with that.
#[cfg(unix)]
#[test]
fn a_run_killed_mid_store_write_is_finished_by_the_next() {
    let env = Env::with_seed(SEED);
    let vault = Vault::start();
    let old = env.live("tenant_a")[0].1.clone();
    vault.put("secret", "md/tenant_a", json!({"token": old}));
    vault.inner.lock().unwrap().hang_writes = true;
    let mut first = with_vault(&env, &vault);
    first
        .cmd
        .args([
            "run",
            "rotate-tokens",
            "--arg",
            "accounts=tenant_a",
            "--arg",
            "sink=vault",
            "--arg",
            "vault_path=md/{account}",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = first.cmd.spawn().unwrap();
    crate::support::wait_until(
        "the store write",
        std::time::Duration::from_secs(30),
        || {
            vault
                .get("secret", "md/tenant_a")
                .is_some_and(|(_, n)| n == 2)
        },
    );
    child.kill().unwrap();
    child.wait().unwrap();
    vault.inner.lock().unwrap().hang_writes = false;
    let landed = vault.get("secret", "md/tenant_a").unwrap().0["token"].clone();
    assert_ne!(landed, old.as_str(), "the new token is in the store");
    // Settling the dead run does not revoke what may be in a target, and
    // says which token to check where.
    with_vault(&env, &vault)
        .args(["journal", "resolve"])
        .stdout("(none)\n")
        .stderr_has(&[
            "a run that died was delivering it to vault:",
            "which cannot be read back here; it is kept as delivered",
        ])
        .run();
    assert!(
        env.live("tenant_a")
            .iter()
            .any(|t| Some(t.1.as_str()) == landed.as_str()),
        "the token in the store is still live"
    );
    // The next rotation replaces it with a verified successor: one live
    // token, the one the store holds.
    with_vault(&env, &vault)
        .args([
            "run",
            "rotate-tokens",
            "--arg",
            "accounts=tenant_a",
            "--arg",
            "sink=vault",
            "--arg",
            "vault_path=md/{account}",
        ])
        .any_stdout()
        .any_stderr()
        .run();
    let tokens = env.live("tenant_a");
    assert_eq!(tokens.len(), 1, "{tokens:?}");
    assert_eq!(
        vault.get("secret", "md/tenant_a").unwrap().0["token"],
        tokens[0].1.as_str()
    );
}

/// Credentials that may read but not write are found before anything is
/// minted (otherwise every run would mint a token and revoke it again).
#[test]
fn read_only_store_credentials_stop_the_run_before_anything_is_minted() {
    let env = Env::with_seed(SEED);
    let vault = Vault::start();
    vault.inner.lock().unwrap().read_only = true;
    with_vault(&env, &vault)
        .args([
            "run",
            "rotate-tokens",
            "--arg",
            "accounts=tenant_a",
            "--arg",
            "sink=vault",
            "--arg",
            "vault_path=md/{account}",
        ])
        .status(2)
        .stderr_has(&[
            "refusing to mint anything",
            "Vault: the token may not write vault:secret/md/tenant_a",
            "give its policy create and update",
        ])
        .any_stdout()
        .run();
    let k8s = K8s::start();
    k8s.inner.lock().unwrap().read_only = true;
    with_k8s(&env, &k8s)
        .args([
            "run",
            "rotate-tokens",
            "--arg",
            "accounts=tenant_a",
            "--arg",
            "sink=k8s",
            "--arg",
            "k8s_namespace=apps",
        ])
        .status(2)
        .stderr_has(&[
            "refusing to mint anything",
            "Kubernetes: the service account may not create k8s:apps/tenant-a-motherduck",
        ])
        .any_stdout()
        .run();
    assert!(
        !env.sim.requests().iter().any(|r| r.method == "POST"),
        "nothing minted"
    );
}
