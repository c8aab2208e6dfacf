//! Every client-side rule: the call fails before any request, naming the field.

use crate::support::{assert_exit, Env};

const CASES: &[(&str, &str, &str)] = &[
    ("accounts::create(\"ab\")", "username", "username \"ab\" is too short: it needs 3 to 255 characters"),
    ("accounts::create(\"1abc\")", "username", "username \"1abc\" must start with a letter (A-Z or a-z)"),
    ("accounts::create(\"my-service\")", "username", "username \"my-service\" contains '-': only letters, digits and _ are allowed"),
    ("accounts::create({ let s = \"a\"; s.pad(300, \"b\"); s })", "username", "is too long: it needs 3 to 255 characters"),
    ("tokens::create(\"bi_tool\", \"\")", "name", "token name must not be empty"),
    ("tokens::create(\"bi_tool\", \"MotherDuck Extension\")", "name", "token name \"MotherDuck Extension\" is reserved by MotherDuck"),
    ("tokens::create(\"bi_tool\", { let s = \"x\"; s.pad(256, \"x\"); s })", "name", "token name is 256 characters long; the maximum is 255"),
    ("tokens::create(\"bi_tool\", #{name: \"t\", ttl: 299})", "ttl", "ttl is 299 seconds; it must be between 300 (5 minutes) and 31536000 (365 days)"),
    ("tokens::create(\"bi_tool\", #{name: \"t\", ttl: \"366d\"})", "ttl", "ttl is 31622400 seconds"),
    ("tokens::create(\"bi_tool\", #{name: \"t\", ttl: \"soon\"})", "ttl", "ttl: invalid duration \"soon\": a number must come before 's'"),
    ("tokens::create(\"bi_tool\", #{name: \"t\", token_type: \"admin\"})", "token_type", "token_type \"admin\" is not one of read_write, read_scaling"),
    ("tokens::create(\"bi_tool\", #{name: \"t\", expires: 5})", "expires", "unknown option \"expires\" (expected name, ttl, token_type, description)"),
    ("tokens::create(\"bi_tool\", #{ttl: 600})", "name", "the `name` option is required"),
    ("tokens::revoke(\"bi_tool\", \"\")", "token_id", "token id must not be empty"),
    ("tokens::list(\"\")", "username", "username must not be empty"),
    ("ducklings::update(\"bi_tool\", #{read_write: #{instance_size: \"huge\"}})", "read_write.instance_size", "instance_size \"huge\" is not one of pulse, standard, jumbo, mega, giga"),
    ("ducklings::update(\"bi_tool\", #{read_scaling: #{flock_size: 65}})", "read_scaling.flock_size", "flock_size is 65; it must be between 0 and 64"),
    ("ducklings::update(\"bi_tool\", #{read_scaling: #{flock_size: -1}})", "read_scaling.flock_size", "flock_size is -1; it must be between 0 and 64"),
    ("ducklings::update(\"bi_tool\", #{read_write: #{cooldown_seconds: 59}})", "read_write.cooldown_seconds", "cooldown_seconds is 59; it must be between 60 and 86400"),
    ("ducklings::update(\"bi_tool\", #{read_write: #{cooldown_seconds: 86401}})", "read_write.cooldown_seconds", "cooldown_seconds is 86401"),
    ("ducklings::set(\"bi_tool\", #{read_write: #{instance_size: \"pulse\", cooldown_seconds: 60}, read_scaling: #{instance_size: \"pulse\", flock_size: 1}})", "read_write.cooldown_seconds", "cooldown_seconds cannot be set for Pulse instances"),
    ("ducklings::set(\"bi_tool\", #{read_write: #{instance_size: \"standard\"}})", "read_scaling", "read_scaling is required"),
    ("ducklings::set(\"bi_tool\", #{read_write: #{instance_size: \"standard\"}, read_scaling: #{instance_size: \"standard\"}})", "read_scaling.flock_size", "flock_size is required for read_scaling"),
    ("ducklings::update(\"bi_tool\", #{read_wrote: #{instance_size: \"standard\"}})", "read_wrote", "unknown part \"read_wrote\" (expected read_write or read_scaling)"),
    ("dives::embed_session(\"not-a-uuid\", \"bi_tool\")", "dive_id", "dive id \"not-a-uuid\" is not a UUID"),
    ("dives::embed_session(\"7b0c6a52-3f0e-4d4b-9a55-2f6a1c3e9d10\", \"bi_tool\", \"\")", "session_name", "session_name must not be empty"),
];

#[test]
fn every_rule_fails_before_sending_and_names_the_field() {
    let env = Env::new();
    // One script catches every case, so the binary starts once.
    let mut script = String::new();
    for (call, _, _) in CASES {
        script.push_str(&format!(
            "try {{ {call}; print(\"NO ERROR\"); }} catch (e) {{ print(`${{e.kind}}|${{e.field}}|${{e.message}}`); }}\n"
        ));
    }
    let out = env.run("rules.rhai", &script, &[]);
    assert_exit(&out, 0);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), CASES.len(), "{out:?}");
    for ((call, field, message), line) in CASES.iter().zip(&lines) {
        let parts: Vec<&str> = line.splitn(3, '|').collect();
        assert_eq!(parts[0], "validation", "{call}: {line}");
        assert_eq!(parts[1], *field, "{call}: {line}");
        assert!(
            parts[2].contains(message),
            "{call}:\n  got      {}\n  expected {message}",
            parts[2]
        );
    }
    // `ducklings::update` reads first; nothing else may reach the API.
    let requests = env.sim.requests();
    assert!(
        requests
            .iter()
            .all(|r| r.method == "GET" && r.path.ends_with("/instances")),
        "{requests:?}"
    );
    assert!(env.sim.writes().is_empty());
}

#[test]
fn the_emulator_enforces_the_same_rules() {
    let env = Env::new();
    let client = crate::support::http();
    let post = |path: &str, body: serde_json::Value| {
        let r = client
            .post(format!("{}{path}", env.sim.url()))
            .bearer_auth(crate::support::ADMIN)
            .json(&body)
            .send()
            .unwrap();
        (r.status().as_u16(), r.json::<serde_json::Value>().unwrap())
    };
    let (status, body) = post("/v1/users", serde_json::json!({"username": "x-y"}));
    assert_eq!(status, 400);
    assert_eq!(body["code"], "BAD_REQUEST");
    assert_eq!(body["issues"][0]["path"], serde_json::json!(["username"]));
    let (status, body) = post(
        "/v1/users/bi_tool/tokens",
        serde_json::json!({"name": "t", "ttl": 10}),
    );
    assert_eq!(
        (status, body["issues"][0]["path"][0].as_str()),
        (400, Some("ttl"))
    );
    let (status, body) = post(
        "/v1/users/bi_tool/tokens",
        serde_json::json!({"name": "t", "ttl": 300.5}),
    );
    assert_eq!(
        (status, body["message"].as_str()),
        (400, Some("ttl must be a whole number of seconds"))
    );
    let r = client
        .put(format!("{}/v1/users/bi_tool/instances", env.sim.url()))
        .bearer_auth(crate::support::ADMIN)
        .json(&serde_json::json!({"config": {"read_write": {"instance_size": "pulse", "cooldown_seconds": 60}, "read_scaling": {"instance_size": "pulse", "flock_size": 1}}}))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let body: serde_json::Value = r.json().unwrap();
    assert_eq!(
        body["message"],
        "cooldown_seconds cannot be set for Pulse instances"
    );
    assert_eq!(
        body["issues"][0]["path"],
        serde_json::json!(["config", "read_write", "cooldown_seconds"])
    );
    let r = client
        .put(format!("{}/v1/users/bi_tool/instances", env.sim.url()))
        .bearer_auth(crate::support::ADMIN)
        .json(&serde_json::json!({"read_write": {"instance_size": "standard"}}))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 400, "PUT needs the config wrapper");
}
