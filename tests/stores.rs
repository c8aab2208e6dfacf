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

fn live(env: &Env, account: &str) -> Vec<(String, String)> {
    let mut t: Vec<(String, String)> = env.org().users[account]
        .tokens
        .iter()
        .map(|t| (t.name.clone(), t.secret.clone()))
        .collect();
    t.sort();
    t
}

/// `mdops` with Vault's environment.
fn with_vault(env: &Env, vault: &Vault) -> Cmd {
    env.mdops()
        .env("VAULT_ADDR", &vault.url)
        .env("VAULT_TOKEN", TOKEN)
        .env("VAULT_NAMESPACE", "team-data")
}

fn no_secret_in(out: &crate::support::Output, env: &Env) {
    for (account, tokens) in [
        ("tenant_a", live(env, "tenant_a")),
        ("tenant_b", live(env, "tenant_b")),
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
        let tokens = live(&env, account);
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
    let old = live(&env, "tenant_a")[0].1.clone();
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
        live(&env, "tenant_a"),
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
    let old = live(&env, "tenant_a")[0].1.clone();
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
        live(&env, "tenant_a"),
        [("app".to_string(), old)],
        "the new token was revoked"
    );
}
