use crate::support::{assert_exit, json_doc, json_result, Env};

#[test]
fn create_then_exists_list_and_duplicate() {
    let env = Env::new();
    let out = env.run(
        "create.rhai",
        r#"
        let made = accounts::create("New_Tenant");
        print(made.username);
        print(accounts::exists("new_tenant"));
        print(accounts::exists("nobody_here"));
        print(accounts::list());
        try {
            accounts::create("NEW_TENANT");
        } catch (e) {
            print(`${e.status} ${e.code} ${e.message}`);
        }
        "#,
        &[],
    );
    assert_exit(&out, 0);
    assert_eq!(
        out.stdout,
        "New_Tenant\ntrue\nfalse\n[\"bi_tool\", \"etl_pipeline\", \"New_Tenant\"]\n400 BAD_REQUEST User with username NEW_TENANT already exists\n"
    );
    let org = env.org();
    assert_eq!(org.users["new_tenant"].username, "New_Tenant");
    assert!(org.users["new_tenant"].service_account);
}

#[test]
fn list_falls_back_without_the_users_route_and_says_so() {
    let seed = crate::support::SEED.replace("dives = [", "users_endpoint = false\ndives = [");
    let env = Env::with_seed(&seed);
    let out = env.run(
        "list.rhai",
        "accounts::list(); accounts::list()",
        &["--output", "json"],
    );
    assert_exit(&out, 0);
    // Only the account with running Ducklings is discoverable without GET /v1/users.
    assert_eq!(json_result(&out), serde_json::json!(["etl_pipeline"]));
    assert_eq!(
        out.stderr,
        "warning: this API has no list of users (GET /v1/users): the accounts known are the inventory's and those with running Ducklings\n",
        "said once, however many listings"
    );
    let users_calls: Vec<_> = env
        .sim
        .requests()
        .into_iter()
        .filter(|r| r.path == "/v1/users")
        .collect();
    assert_eq!(users_calls.len(), 1, "the missing route is probed once");
    assert_eq!(users_calls[0].status, 404);
}

/// Without a user list, running Ducklings name people too: `all` and patterns
/// choose only from the inventory, so a write workflow leaves the others be;
/// an account named outright is still taken.
#[test]
fn without_a_user_list_all_chooses_only_from_the_inventory() {
    let seed = crate::support::SEED
        .replace("dives = [", "users_endpoint = false\ndives = [")
        .replace(
            "roles = [\"admin\"]",
            "roles = [\"admin\"]\nactive = [{ id = \"rw\", type = \"read_write\", status = \"active\" }]",
        );
    let env = Env::with_seed(&seed);
    let cleanup = |accounts: &str| {
        env.mdops()
            .args(["-q", "run", "cleanup-tokens", "--arg", accounts])
            .args(["--arg", "older_than=1d", "--arg", "include_newest=true"])
            .output()
    };
    // With nothing in the inventory, `all` would quietly be nothing: refused,
    // even with -q (a cron job).
    let out = cleanup("accounts=all");
    assert_exit(&out, 2);
    assert!(
        out.stderr
            .contains("may be people (ada, etl_pipeline), and it names no account to act on"),
        "{out:?}"
    );
    // A name written out is taken, beside a pattern that matches nothing.
    let out = env
        .mdops()
        .args([
            "run",
            "cleanup-tokens",
            "--dry-run",
            "--arg",
            "accounts=bi_tool,zz_*",
        ])
        .args(["--arg", "older_than=1d", "--arg", "include_newest=true"])
        .output();
    assert_exit(&out, 0);
    assert!(
        out.stdout.contains("[dry-run] revoke token bi_tool/"),
        "{out:?}"
    );
    let add = env.mdops().args(["inventory", "add", "bi_tool"]).output();
    assert_exit(&add, 0);
    let out = env
        .mdops()
        .args(["run", "cleanup-tokens", "--arg", "accounts=all"])
        .args(["--arg", "older_than=1d", "--arg", "include_newest=true"])
        .output();
    assert_exit(&out, 0);
    assert!(
        out.stderr.contains(
            "accounts with running Ducklings may be people, so these are left out: ada, etl_pipeline;"
        ),
        "{out:?}"
    );
    let deleted = |env: &Env| -> Vec<String> {
        env.sim
            .requests()
            .into_iter()
            .filter(|r| r.method == "DELETE")
            .map(|r| r.path)
            .collect()
    };
    assert_eq!(deleted(&env).len(), 1, "{:?}", deleted(&env));
    assert!(deleted(&env)[0].starts_with("/v1/users/bi_tool/tokens/"));
    let out = cleanup("accounts=e*");
    assert_exit(&out, 2);
    assert!(out.stderr.contains("\"e*\" selects no account"), "{out:?}");
    let out = cleanup("accounts=etl_pipeline");
    assert_exit(&out, 0);
    assert_eq!(deleted(&env).len(), 3, "named outright, it is taken");
    // Nor are they adopted into the inventory, where `all` would find them.
    let out = env
        .mdops()
        .args(["inventory", "reconcile", "--adopt"])
        .output();
    assert!(
        out.stderr.contains("may be people: none is adopted"),
        "{out:?}"
    );
    let out = env.mdops().args(["inventory", "list"]).output();
    assert_exit(&out, 0);
    assert!(!out.stdout.contains("ada"), "{out:?}");
    // A report still reads every account there is to see.
    let out = env.mdops().args(["run", "audit-report"]).output();
    assert_exit(&out, 0);
    for row in ["ada ", "bi_tool ", "etl_pipeline "] {
        assert!(out.stdout.contains(row), "{row}: {out:?}");
    }
    assert!(out.stdout.contains("untracked"), "{out:?}");
}

#[test]
fn active_accounts_keep_api_field_names() {
    let env = Env::new();
    let out = env.run(
        "active.rhai",
        "let a = accounts::active(); a[0].ducklings[0].type + \"/\" + a[0].ducklings[0].status",
        &[],
    );
    assert_exit(&out, 0);
    assert_eq!(out.stdout, "read_write/active\n");
}

#[test]
fn delete_needs_yes_when_not_interactive() {
    let env = Env::new();
    let out = env.run("del.rhai", "accounts::delete(\"bi_tool\")", &[]);
    assert_exit(&out, 1);
    assert!(
        out.stderr
            .contains("deleting account bi_tool needs confirmation: pass --yes"),
        "{out:?}"
    );
    assert!(env.org().users.contains_key("bi_tool"));
    assert!(env.sim.writes().is_empty());

    let out = env.run("del.rhai", "accounts::delete(\"bi_tool\")", &["--yes"]);
    assert_exit(&out, 0);
    assert_eq!(out.stdout, "username  bi_tool\n");
    assert!(!env.org().users.contains_key("bi_tool"));
    // Its tokens die with it.
    assert!(env
        .org()
        .revoked
        .contains_key("bi-secret-looker-00000000000000"));
}

#[test]
fn dry_run_makes_no_writes() {
    let env = Env::new();
    let out = env.run(
        "plan.rhai",
        r#"
        accounts::create("planned_one");
        let t = tokens::create("etl_pipeline", #{name: "next", ttl: "30d"});
        tokens::revoke("etl_pipeline", "11111111-1111-4111-8111-111111111111");
        ducklings::update("etl_pipeline", #{read_scaling: #{flock_size: 6}});
        accounts::delete("bi_tool");
        t.token
        "#,
        &["--dry-run"],
    );
    assert_exit(&out, 0);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], "[dry-run] create account planned_one");
    assert_eq!(
        lines[1],
        "[dry-run] create token etl_pipeline: read_write token \"next\", ttl 30d"
    );
    assert_eq!(
        lines[2],
        "[dry-run] revoke token etl_pipeline/11111111-1111-4111-8111-111111111111"
    );
    assert_eq!(
        lines[3],
        "[dry-run] set ducklings etl_pipeline: read_scaling.flock_size: 2 → 6"
    );
    assert_eq!(
        lines[4],
        "[dry-run] delete account bi_tool: irreversible: deletes its data"
    );
    assert!(lines[5].starts_with("<secret "), "{out:?}");
    assert!(env.sim.writes().is_empty(), "{:?}", env.sim.writes());
    assert_eq!(env.token_names("etl_pipeline"), ["airflow", "dbt", "old"]);
}

#[test]
fn dry_run_plan_is_part_of_the_json_document() {
    let env = Env::new();
    let out = env.run(
        "plan.rhai",
        "accounts::create(\"planned_one\"); 7",
        &["--dry-run", "--output", "json"],
    );
    assert_exit(&out, 0);
    let doc = json_doc(&out);
    assert_eq!(doc["dry_run"], true);
    assert_eq!(
        doc["plan"],
        serde_json::json!([{"action": "create account", "target": "planned_one"}])
    );
    assert_eq!(doc["result"], 7);
    assert_eq!(doc["summary"]["writes"], 1, "{doc}");
    assert_eq!(doc["error"], serde_json::Value::Null);
}

/// The user list's filters go to the server; a member who left is listed as
/// such and is never taken for a service account.
#[test]
fn users_can_be_filtered_by_the_server() {
    let seed = crate::support::SEED.replace(
        "[[members]]\nusername = \"ada\"",
        "[[members]]\nusername = \"grace\"\ndeprovisioned = true\n\n[[members]]\nusername = \"ada\"",
    );
    let env = Env::with_seed(&seed);
    let names = |filter: &str| -> Vec<String> {
        let out = env
            .rhai(
                "u.rhai",
                &format!("accounts::users({filter}).map(|u| u.username)"),
            )
            .args(["--output", "json"])
            .any_stdout()
            .run();
        serde_json::from_value(json_result(&out)).unwrap()
    };
    assert_eq!(names(""), ["ada", "bi_tool", "etl_pipeline", "grace"]);
    assert_eq!(
        names("#{service_accounts: true}"),
        ["bi_tool", "etl_pipeline"]
    );
    assert_eq!(names("#{deprovisioned: true}"), ["grace"]);
    assert_eq!(
        names("#{service_accounts: false, deprovisioned: false}"),
        ["ada"]
    );
    let queries: Vec<String> = env
        .sim
        .requests()
        .into_iter()
        .filter(|r| r.path == "/v1/users")
        .filter_map(|r| r.query)
        .collect();
    assert!(
        queries.contains(&"limit=1000&is_deprovisioned=false&is_service_account=false".to_string()),
        "{queries:?}"
    );
    env.rhai("bad.rhai", "accounts::users(#{service: true})")
        .status(1)
        .stderr_has(&["unknown filter \"service\""])
        .run();
    // accounts::list() is the live service accounts, whatever the members.
    let out = env
        .rhai("l.rhai", "accounts::list()")
        .args(["--output", "json"])
        .any_stdout()
        .run();
    assert_eq!(
        json_result(&out),
        serde_json::json!(["bi_tool", "etl_pipeline"])
    );
}

/// Running Ducklings name people too (and people who left): with a user list
/// to tell, only live service accounts are "all".
#[test]
fn all_accounts_are_service_accounts_even_when_people_run_ducklings() {
    let env = Env::with_seed(
        r#"
admin_token = "test-admin-token-0123456789"

[[members]]
username = "ada"
roles = ["admin"]
active = [{ id = "rw", type = "read_write", status = "active" }]

[[members]]
username = "bob_left"
deprovisioned = true
active = [{ id = "rw", type = "read_write", status = "cooldown" }]

[[accounts]]
username = "svc_etl"
tokens = [{ name = "old", age = "400d" }]
"#,
    );
    let out = env.run("list.rhai", "accounts::list()", &["--output", "json"]);
    assert_exit(&out, 0);
    assert_eq!(json_result(&out), serde_json::json!(["svc_etl"]));
    let out = env
        .mdops()
        .args([
            "run",
            "cleanup-tokens",
            "--arg",
            "accounts=all",
            "--arg",
            "older_than=90d",
            "--dry-run",
        ])
        .output();
    assert_exit(&out, 0);
    assert!(out.stdout.contains("svc_etl"), "{out:?}");
    assert!(
        !out.stdout.contains("ada") && !out.stdout.contains("bob_left"),
        "{out:?}"
    );
}
