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
