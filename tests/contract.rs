//! The emulator answers with the shapes of `docs/motherduck-openapi.json`, for
//! every operation and for each error status it can produce.

use crate::support::oracle::to_json_schema;
use crate::support::{http, Env, ADMIN};
use serde_json::{json, Value};

const SPEC: &str = include_str!("../docs/motherduck-openapi.json");

struct Case {
    method: &'static str,
    path: &'static str,
    concrete: String,
    body: Option<Value>,
    token: &'static str,
    status: u16,
}

fn case(
    method: &'static str,
    path: &'static str,
    concrete: &str,
    body: Option<Value>,
    token: &'static str,
    status: u16,
) -> Case {
    Case {
        method,
        path,
        concrete: concrete.to_string(),
        body,
        token,
        status,
    }
}

#[test]
fn every_operation_matches_the_spec() {
    let spec: Value = serde_json::from_str(SPEC).unwrap();
    let env = Env::new();
    let dive = "7b0c6a52-3f0e-4d4b-9a55-2f6a1c3e9d10";
    let etl_tok = "/v1/users/etl_pipeline/tokens/22222222-2222-4222-8222-222222222222";
    let config = json!({"config": {"read_write": {"instance_size": "standard"}, "read_scaling": {"instance_size": "pulse", "flock_size": 1}}});
    let non_admin = "bi-secret-looker-00000000000000";
    let cases = vec![
        case(
            "get",
            "/v1/users/{username}/instances",
            "/v1/users/etl_pipeline/instances",
            None,
            ADMIN,
            200,
        ),
        case(
            "get",
            "/v1/users/{username}/instances",
            "/v1/users/ghost/instances",
            None,
            ADMIN,
            404,
        ),
        case(
            "get",
            "/v1/users/{username}/instances",
            "/v1/users/etl_pipeline/instances",
            None,
            "bad",
            401,
        ),
        case(
            "get",
            "/v1/users/{username}/instances",
            "/v1/users/etl_pipeline/instances",
            None,
            non_admin,
            403,
        ),
        case(
            "put",
            "/v1/users/{username}/instances",
            "/v1/users/bi_tool/instances",
            Some(config.clone()),
            ADMIN,
            200,
        ),
        case(
            "put",
            "/v1/users/{username}/instances",
            "/v1/users/bi_tool/instances",
            Some(json!({"config": {}})),
            ADMIN,
            400,
        ),
        case(
            "put",
            "/v1/users/{username}/instances",
            "/v1/users/ghost/instances",
            Some(config),
            ADMIN,
            404,
        ),
        case(
            "post",
            "/v1/users",
            "/v1/users",
            Some(json!({"username": "contract_one"})),
            ADMIN,
            200,
        ),
        case(
            "post",
            "/v1/users",
            "/v1/users",
            Some(json!({"username": "contract_one"})),
            ADMIN,
            400,
        ),
        case(
            "post",
            "/v1/users",
            "/v1/users",
            Some(json!({"username": "nope_one"})),
            non_admin,
            403,
        ),
        case("get", "/v1/users", "/v1/users?limit=2", None, ADMIN, 200),
        case("get", "/v1/users", "/v1/users?limit=0", None, ADMIN, 400),
        case(
            "get",
            "/v1/users/{username}/tokens",
            "/v1/users/etl_pipeline/tokens",
            None,
            ADMIN,
            200,
        ),
        case(
            "get",
            "/v1/users/{username}/tokens",
            "/v1/users/ghost/tokens",
            None,
            ADMIN,
            404,
        ),
        case(
            "post",
            "/v1/users/{username}/tokens",
            "/v1/users/etl_pipeline/tokens",
            Some(json!({"name": "c", "ttl": 600})),
            ADMIN,
            200,
        ),
        case(
            "post",
            "/v1/users/{username}/tokens",
            "/v1/users/etl_pipeline/tokens",
            Some(json!({"name": "c", "token_type": "read_scaling"})),
            ADMIN,
            200,
        ),
        case(
            "post",
            "/v1/users/{username}/tokens",
            "/v1/users/etl_pipeline/tokens",
            Some(json!({"name": ""})),
            ADMIN,
            400,
        ),
        case(
            "delete",
            "/v1/users/{username}/tokens/{token_id}",
            etl_tok,
            None,
            ADMIN,
            200,
        ),
        case(
            "delete",
            "/v1/users/{username}/tokens/{token_id}",
            etl_tok,
            None,
            ADMIN,
            404,
        ),
        case(
            "get",
            "/v1/active_accounts",
            "/v1/active_accounts",
            None,
            ADMIN,
            200,
        ),
        case(
            "get",
            "/v1/active_accounts",
            "/v1/active_accounts",
            None,
            "",
            401,
        ),
        case(
            "post",
            "/v1/dives/{dive_id}/embed-session",
            &format!("/v1/dives/{dive}/embed-session"),
            Some(json!({"username": "bi_tool", "session_hint": "h"})),
            ADMIN,
            200,
        ),
        case(
            "post",
            "/v1/dives/{dive_id}/embed-session",
            "/v1/dives/not-a-uuid/embed-session",
            Some(json!({"username": "bi_tool"})),
            ADMIN,
            400,
        ),
        case(
            "post",
            "/v1/tokens/short-lived",
            "/v1/tokens/short-lived",
            Some(json!({"token_type": "read_scaling", "context": {"Tenant": "acme"}})),
            ADMIN,
            200,
        ),
        case(
            "post",
            "/v1/tokens/short-lived",
            "/v1/tokens/short-lived",
            Some(json!({"token_type": "read_write"})),
            ADMIN,
            400,
        ),
        case(
            "post",
            "/v1/tokens/short-lived",
            "/v1/tokens/short-lived",
            Some(json!({"token_type": "read_scaling"})),
            "bad",
            401,
        ),
        case(
            "delete",
            "/v1/users/{username}",
            "/v1/users/contract_one",
            None,
            ADMIN,
            200,
        ),
        case(
            "delete",
            "/v1/users/{username}",
            "/v1/users/contract_one",
            None,
            ADMIN,
            404,
        ),
        case(
            "delete",
            "/v1/users/{username}",
            "/v1/users/bi_tool",
            None,
            "bad",
            401,
        ),
    ];
    // Every operation of the spec has at least its success case.
    for (path, item) in spec["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            assert!(
                cases
                    .iter()
                    .any(|c| c.path == path && c.method == method && c.status == 200),
                "no success case for {method} {path}"
            );
        }
    }
    let client = http();
    for c in &cases {
        let url = format!("{}{}", env.sim.url(), c.concrete);
        let mut req = match c.method {
            "get" => client.get(&url),
            "put" => client.put(&url),
            "post" => client.post(&url),
            "delete" => client.delete(&url),
            _ => unreachable!(),
        };
        if !c.token.is_empty() {
            req = req.bearer_auth(c.token);
        }
        if let Some(b) = &c.body {
            req = req.json(b);
        }
        let resp = req.send().unwrap();
        assert_eq!(
            resp.status().as_u16(),
            c.status,
            "{} {}",
            c.method,
            c.concrete
        );
        assert!(
            resp.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json"),
            "{} {}",
            c.method,
            c.concrete
        );
        let body: Value = resp.json().unwrap();
        let op = &spec["paths"][c.path][c.method];
        let schema =
            &op["responses"][c.status.to_string()]["content"]["application/json"]["schema"];
        assert!(
            !schema.is_null(),
            "spec has no {} response for {} {}",
            c.status,
            c.method,
            c.path
        );
        let schema = to_json_schema(schema, &spec);
        let validator = jsonschema::options()
            .should_validate_formats(true)
            .build(&schema)
            .unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&body)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{} {} -> {}: {body}\n{errors:?}",
            c.method,
            c.concrete,
            c.status
        );
    }
}

#[test]
fn unknown_routes_answer_plain_text_404() {
    let env = Env::new();
    let client = http();
    for (method, path) in [
        ("GET", "/v1/users/etl_pipeline"),
        ("GET", "/v2/anything"),
        ("PATCH", "/v1/users/etl_pipeline/instances"),
    ] {
        let resp = client
            .request(method.parse().unwrap(), format!("{}{path}", env.sim.url()))
            .bearer_auth(ADMIN)
            .send()
            .unwrap();
        assert_eq!(resp.status().as_u16(), 404, "{method} {path}");
        assert!(resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain"));
        assert_eq!(resp.text().unwrap(), "Not Found");
    }
}

#[test]
fn secrets_come_back_once_and_usernames_ignore_case() {
    let env = Env::new();
    let client = http();
    let url = env.sim.url();
    let created: Value = client
        .post(format!("{url}/v1/users/ETL_Pipeline/tokens"))
        .bearer_auth(ADMIN)
        .json(&json!({"name": "once"}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let secret = created["token"].as_str().unwrap().to_string();
    assert!(created.get("expire_at").is_none(), "no ttl, no expire_at");
    let listed = client
        .get(format!("{url}/v1/users/etl_pipeline/tokens"))
        .bearer_auth(ADMIN)
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(listed.contains("\"once\""));
    assert!(!listed.contains(&secret), "the list never carries secrets");
    // The new token works for its own account.
    let own = client
        .get(format!("{url}/v1/users/etl_pipeline/tokens"))
        .bearer_auth(&secret)
        .send()
        .unwrap();
    assert_eq!(own.status().as_u16(), 200);
}

#[test]
fn expired_tokens_leave_the_list_and_stop_working() {
    let env = Env::new();
    let client = http();
    let url = env.sim.url();
    let list = || -> Vec<String> {
        let v: Value = client
            .get(format!("{url}/v1/users/bi_tool/tokens"))
            .bearer_auth(ADMIN)
            .send()
            .unwrap()
            .json()
            .unwrap();
        v["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(list(), ["looker"]);
    env.org().clock_offset = chrono::Duration::days(26);
    assert!(list().is_empty());
    let resp = client
        .get(format!("{url}/v1/users/bi_tool/tokens"))
        .bearer_auth("bi-secret-looker-00000000000000")
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
}
