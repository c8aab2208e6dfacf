//! An independent oracle for what mdops sends: every request it made in a
//! test is checked against `docs/motherduck-openapi.json` (the operation
//! exists, path parameters and query values fit, the body validates against
//! the operation's schema), not against the `rules.rs` the client itself
//! uses, so a rule that is wrong in both client and emulator is still caught.

use mdops::sim::Logged;
use serde_json::{json, Value};
use std::sync::OnceLock;

const SPEC: &str = include_str!("../../docs/motherduck-openapi.json");

fn spec() -> &'static Value {
    static SPEC_VALUE: OnceLock<Value> = OnceLock::new();
    SPEC_VALUE.get_or_init(|| serde_json::from_str(SPEC).expect("the spec parses"))
}

/// OpenAPI 3.0 schema → JSON Schema: inline `$ref`s, turn `nullable` into a null type.
pub fn to_json_schema(schema: &Value, spec: &Value) -> Value {
    match schema {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get("$ref") {
                let name = r.trim_start_matches("#/components/schemas/");
                return to_json_schema(&spec["components"]["schemas"][name], spec);
            }
            let mut out = serde_json::Map::new();
            for (k, v) in m {
                if k == "nullable" || k == "example" || k.starts_with("x-") {
                    continue;
                }
                out.insert(k.clone(), to_json_schema(v, spec));
            }
            if m.get("nullable") == Some(&Value::Bool(true)) {
                if let Some(Value::String(t)) = m.get("type") {
                    out.insert("type".into(), json!([t, "null"]));
                }
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(|v| to_json_schema(v, spec)).collect()),
        other => other.clone(),
    }
}

fn validate(schema: &Value, value: &Value) -> Vec<String> {
    let schema = to_json_schema(schema, spec());
    let validator = jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("the spec's schemas compile");
    validator
        .iter_errors(value)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect()
}

fn decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&segment[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The operation a request is for, with its path parameters.
fn operation(method: &str, path: &str) -> Option<(&'static Value, Vec<(String, String)>)> {
    let got: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    for (template, ops) in spec()["paths"].as_object()? {
        let want: Vec<&str> = template.trim_start_matches('/').split('/').collect();
        if want.len() != got.len() {
            continue;
        }
        let mut params = Vec::new();
        let fits = want.iter().zip(&got).all(|(w, g)| {
            if w.starts_with('{') {
                params.push((w.trim_matches(['{', '}']).to_string(), decode(g)));
                true
            } else {
                w == g
            }
        });
        if fits {
            if let Some(op) = ops.get(method.to_lowercase()) {
                return Some((op, params));
            }
        }
    }
    None
}

/// What is wrong with one request, if anything.
pub fn problems(r: &Logged) -> Vec<String> {
    let Some((op, params)) = operation(&r.method, &r.path) else {
        return vec![format!(
            "{} {}: no such operation in the spec",
            r.method, r.path
        )];
    };
    let mut out = Vec::new();
    let declared = op["parameters"].as_array().cloned().unwrap_or_default();
    for (name, value) in &params {
        let Some(p) = declared
            .iter()
            .find(|p| p["name"] == name.as_str() && p["in"] == "path")
        else {
            out.push(format!(
                "{} {}: undeclared path parameter {name}",
                r.method, r.path
            ));
            continue;
        };
        out.extend(
            validate(&p["schema"], &json!(value))
                .into_iter()
                .map(|e| format!("{} {}: path {name}: {e}", r.method, r.path)),
        );
    }
    for pair in r
        .query
        .as_deref()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let Some(p) = declared
            .iter()
            .find(|p| p["name"] == k && p["in"] == "query")
        else {
            out.push(format!(
                "{} {}: undeclared query parameter {k}",
                r.method, r.path
            ));
            continue;
        };
        let value = match p["schema"]["type"].as_str() {
            Some("integer") => v.parse::<i64>().map(Value::from).unwrap_or(json!(v)),
            Some("boolean") => v.parse::<bool>().map(Value::from).unwrap_or(json!(v)),
            _ => json!(decode(v)),
        };
        out.extend(
            validate(&p["schema"], &value)
                .into_iter()
                .map(|e| format!("{} {}: query {k}: {e}", r.method, r.path)),
        );
    }
    let schema = &op["requestBody"]["content"]["application/json"]["schema"];
    match (&r.body, schema.is_null()) {
        (Some(body), false) => match serde_json::from_str::<Value>(body) {
            Ok(v) => out.extend(
                validate(schema, &v)
                    .into_iter()
                    .map(|e| format!("{} {}: body {body}: {e}", r.method, r.path)),
            ),
            Err(e) => out.push(format!(
                "{} {}: the body is not JSON ({e})",
                r.method, r.path
            )),
        },
        (None, false) if op["requestBody"]["required"] == true => out.push(format!(
            "{} {}: the required body is missing",
            r.method, r.path
        )),
        (Some(body), true) => out.push(format!(
            "{} {}: a body the operation does not take: {body}",
            r.method, r.path
        )),
        _ => {}
    }
    out
}

/// Checks every request mdops sent (a test's own raw requests, which probe
/// the emulator with bad input on purpose, are left out).
pub fn check(requests: &[Logged]) {
    let mut all = Vec::new();
    for r in requests
        .iter()
        .filter(|r| r.agent.as_deref().is_some_and(|a| a.starts_with("mdops/")))
    {
        all.extend(problems(r));
    }
    assert!(
        all.is_empty(),
        "mdops sent requests the API spec does not allow:\n{}",
        all.join("\n")
    );
}

#[test]
fn the_oracle_catches_what_the_spec_forbids() {
    let req = |method: &str, path: &str, body: Option<&str>| Logged {
        method: method.into(),
        path: path.into(),
        status: 200,
        query: None,
        body: body.map(String::from),
        agent: Some("mdops/test".into()),
    };
    assert!(problems(&req(
        "POST",
        "/v1/users/acct/tokens",
        Some(r#"{"name":"x","ttl":300}"#)
    ))
    .is_empty());
    assert!(!problems(&req(
        "POST",
        "/v1/users/acct/tokens",
        Some(r#"{"name":"","ttl":10}"#)
    ))
    .is_empty());
    assert!(!problems(&req(
        "PUT",
        "/v1/users/acct/instances",
        Some(r#"{"read_write":{}}"#)
    ))
    .is_empty());
    assert!(
        !problems(&req("GET", "/v1/users/acct", None)).is_empty(),
        "no such operation"
    );
    assert!(
        !problems(&req("DELETE", "/v1/users/acct/tokens/x", Some("{}"))).is_empty(),
        "a body where none belongs"
    );
    let long = format!("/v1/users/{}/tokens", "a".repeat(300));
    assert!(
        !problems(&req("GET", &long, None)).is_empty(),
        "username longer than 255"
    );
}
