use crate::support::{assert_exit, Env};

#[test]
fn embed_session_is_a_secret() {
    let env = Env::new();
    let out = env.run(
        "dive.rhai",
        r#"
        let s = dives::embed_session("7b0c6a52-3f0e-4d4b-9a55-2f6a1c3e9d10", "bi_tool");
        print(s);
        print(type_of(s));
        let h = dives::embed_session("7b0c6a52-3f0e-4d4b-9a55-2f6a1c3e9d10", "bi_tool", "tenant-42");
        print(h.reveal().starts_with("mdembed_"));
        try {
            dives::embed_session("00000000-0000-4000-8000-000000000000", "bi_tool");
        } catch (e) {
            print(`${e.status} ${e.message}`);
        }
        try {
            dives::embed_session("7b0c6a52-3f0e-4d4b-9a55-2f6a1c3e9d10", "ada");
        } catch (e) {
            print(`${e.status} ${e.message}`);
        }
        "#,
        &[],
    );
    assert_exit(&out, 0);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(
        lines[0].starts_with("<secret ") && !lines[0].contains("mdembed_"),
        "{out:?}"
    );
    assert_eq!(lines[1], "Secret");
    assert_eq!(lines[2], "true");
    assert_eq!(
        lines[3],
        "404 Dive 00000000-0000-4000-8000-000000000000 not found"
    );
    assert_eq!(
        lines[4],
        "400 embed sessions can only run as a service account"
    );
}

/// The newer embed options reach the server as the API names them, and the
/// API's rules are checked before anything is sent.
#[test]
fn embed_options_are_sent_and_checked() {
    let env = Env::new();
    let dive = "7b0c6a52-3f0e-4d4b-9a55-2f6a1c3e9d10";
    env.rhai(
        "opts.rhai",
        &format!(
            r#"
            let s = dives::embed_session("{dive}", "bi_tool", #{{
                session_name: "tenant-42", version: 3,
                required_resources: [#{{url: "md:_share/sales/abc", alias: "sales"}}],
                initial_state: #{{region: "emea", year: 2026}},
            }});
            s.reveal().len() > 8
            "#
        ),
    )
    .stdout("true\n")
    .run();
    let posts: Vec<serde_json::Value> = env
        .sim
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .map(|r| serde_json::from_str(r.body.as_deref().unwrap()).unwrap())
        .collect();
    assert_eq!(
        posts,
        [serde_json::json!({
            "username": "bi_tool", "session_name": "tenant-42", "version": 3,
            "required_resources": [{"url": "md:_share/sales/abc", "alias": "sales"}],
            "initial_state": {"region": "emea", "year": 2026},
        })]
    );
    // The third argument as a string names the session (the current name).
    env.rhai(
        "named.rhai",
        &format!(r#"dives::embed_session("{dive}", "bi_tool", "t-1").reveal().len() > 8"#),
    )
    .stdout("true\n")
    .run();
    let last = env.sim.requests().last().unwrap().body.clone().unwrap();
    assert_eq!(last, r#"{"username":"bi_tool","session_name":"t-1"}"#);
    for (opts, why) in [
        ("#{version: 0}", "version must be 1 or more"),
        ("#{session_name: \"\"}", "session_name must not be empty"),
        ("#{session_name: \"a\", session_hint: \"b\"}", "not both"),
        (
            "#{required_resources: [#{alias: \"x\"}]}",
            "missing field `url`",
        ),
        (
            "#{required_resources: [#{url: \"\"}]}",
            "each resource needs a url",
        ),
        (
            "#{initial_state: #{big: big}}",
            "initial_state is 70010 bytes as JSON; at most 65536",
        ),
        ("#{sesion_name: \"a\"}", "unknown option \"sesion_name\""),
    ] {
        let before = env.sim.requests().len();
        env.rhai(
            "bad.rhai",
            &format!(
                r#"let big = ""; big.pad(70000, 'x'); dives::embed_session("{dive}", "bi_tool", {opts})"#
            ),
        )
        .status(1)
        .stderr_has(&[why])
        .run();
        assert_eq!(env.sim.requests().len(), before, "{opts}: nothing sent");
    }
}
