//! Behaviour under injected faults: retries, the shared 429 pause, and POSTs
//! whose answer was lost.

use crate::support::{assert_exit, Env, SEED};
use mdops::sim::{Behaviour, Faults};
use std::time::{Duration, Instant};

fn with_faults(faults: Faults) -> Env {
    Env::with(
        SEED,
        Behaviour {
            faults,
            ..Default::default()
        },
    )
}

#[test]
fn idempotent_calls_are_retried_after_5xx() {
    let env = with_faults(Faults {
        error_rate: 1.0,
        scope: Some("GET /v1/users/*/tokens".into()),
        limit: Some(2),
        ..Default::default()
    });
    let out = env.run("r.rhai", "tokens::list(\"bi_tool\").len()", &[]);
    assert_exit(&out, 0);
    assert_eq!(out.stdout, "1\n");
    let statuses: Vec<u16> = env.sim.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses.len(), 3);
    assert!(
        statuses[0] >= 502 && statuses[1] >= 502 && statuses[2] == 200,
        "{statuses:?}"
    );
    assert_eq!(out.stderr.matches("retrying").count(), 2, "{out:?}");
}

#[test]
fn a_429_pauses_for_retry_after() {
    let env = with_faults(Faults {
        throttle_rate: 1.0,
        retry_after: 1,
        scope: Some("PUT *".into()),
        limit: Some(1),
        ..Default::default()
    });
    let started = Instant::now();
    let out = env.run(
        "t.rhai",
        "ducklings::update(\"bi_tool\", #{read_scaling: #{flock_size: 3}}).read_scaling.flock_size",
        &[],
    );
    assert_exit(&out, 0);
    assert_eq!(out.stdout, "3\n");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After was not honoured"
    );
    let puts: Vec<u16> = env
        .sim
        .requests()
        .iter()
        .filter(|r| r.method == "PUT")
        .map(|r| r.status)
        .collect();
    assert_eq!(puts, [429, 200]);
}

#[test]
fn retries_give_up_with_the_last_error() {
    let env = with_faults(Faults {
        error_rate: 1.0,
        scope: Some("GET *".into()),
        ..Default::default()
    });
    let path = env.script("g.rhai", "tokens::list(\"bi_tool\")");
    let out = env
        .mdops()
        .args(["--retries", "2", "run", path.to_str().unwrap()])
        .output();
    // The API kept failing after its retries: exit 6, which cron tells apart from a bug.
    assert_exit(&out, 6);
    assert_eq!(env.sim.requests().len(), 3);
    assert!(
        out.stderr
            .contains("error: GET /v1/users/bi_tool/tokens failed with 50"),
        "{out:?}"
    );
}

#[test]
fn a_lost_token_answer_leaves_no_duplicate_and_no_orphan() {
    let env = with_faults(Faults {
        drop_rate: 1.0,
        scope: Some("POST /v1/users/*/tokens".into()),
        limit: Some(1),
        ..Default::default()
    });
    let out = env.run(
        "m.rhai",
        "let t = tokens::create(\"bi_tool\", \"dropped-once\"); t.token.reveal()",
        &[],
    );
    assert_exit(&out, 0);
    let org = env.org();
    let named: Vec<_> = org.users["bi_tool"]
        .tokens
        .iter()
        .filter(|t| t.name == "dropped-once")
        .collect();
    assert_eq!(named.len(), 1, "exactly one live token");
    assert_eq!(
        out.stdout.trim(),
        named[0].secret,
        "the script holds the live token's secret"
    );
    assert_eq!(
        org.revoked.len(),
        1,
        "the token whose answer was lost was revoked"
    );
    let posts: Vec<u16> = env
        .sim
        .requests()
        .iter()
        .filter(|r| r.method == "POST")
        .map(|r| r.status)
        .collect();
    assert_eq!(posts, [0, 200]);
}

/// The same, with the server's clock five minutes behind ours (or ahead):
/// the orphan is looked for in the server's time (its `Date` header), so it
/// is still found.
#[test]
fn a_lost_token_answer_is_resolved_whatever_the_clocks_say() {
    for skew_minutes in [-5i64, 5] {
        let env = with_faults(Faults {
            drop_rate: 1.0,
            scope: Some("POST /v1/users/*/tokens".into()),
            limit: Some(1),
            ..Default::default()
        });
        env.org().clock_offset = chrono::Duration::minutes(skew_minutes);
        let out = env.run(
            "m.rhai",
            "let t = tokens::create(\"bi_tool\", \"skewed\"); t.token.reveal()",
            &[],
        );
        assert_exit(&out, 0);
        let org = env.org();
        let named: Vec<_> = org.users["bi_tool"]
            .tokens
            .iter()
            .filter(|t| t.name == "skewed")
            .collect();
        assert_eq!(
            named.len(),
            1,
            "skew {skew_minutes}m: exactly one live token"
        );
        assert_eq!(out.stdout.trim(), named[0].secret);
        assert_eq!(
            org.revoked.len(),
            1,
            "skew {skew_minutes}m: the orphan was revoked"
        );
    }
}

/// A token of the same name that the account held before the request (a
/// person made it seconds ago) is never taken for the lost request's orphan,
/// whatever the clocks say: the account's tokens are listed before the create.
#[test]
fn a_same_named_token_from_before_the_request_is_never_revoked() {
    let seed = SEED.replace(
        "tokens = [{ name = \"looker\"",
        "tokens = [{ name = \"ci\", secret = \"person-made-ci-token-000000000000\", age = \"5s\" }, { name = \"looker\"",
    );
    for skew_days in [0i64, -2] {
        let env = Env::with(
            &seed,
            Behaviour {
                faults: Faults {
                    drop_rate: 1.0,
                    scope: Some("POST /v1/users/*/tokens".into()),
                    limit: Some(1),
                    ..Default::default()
                },
                ..Default::default()
            },
        );
        // A server clock (and so its Date header) days off: not believed, not needed.
        env.org().clock_offset = chrono::Duration::days(skew_days);
        let out = env.run(
            "m.rhai",
            "tokens::create(\"bi_tool\", \"ci\").token.reveal()",
            &[],
        );
        assert_exit(&out, 0);
        let org = env.org();
        let ci: Vec<&str> = org.users["bi_tool"]
            .tokens
            .iter()
            .filter(|t| t.name == "ci")
            .map(|t| t.secret.as_str())
            .collect();
        assert!(
            ci.contains(&"person-made-ci-token-000000000000"),
            "the person's token stays"
        );
        assert!(ci.contains(&out.stdout.trim()), "ours is live");
        assert_eq!(ci.len(), 2, "and the orphan of the lost answer is gone");
    }
}

#[test]
fn a_lost_account_answer_is_resolved_by_looking() {
    let env = with_faults(Faults {
        drop_rate: 1.0,
        scope: Some("POST /v1/users".into()),
        limit: Some(1),
        ..Default::default()
    });
    let out = env.run("a.rhai", "accounts::create(\"dropped_acct\").username", &[]);
    assert_exit(&out, 0);
    assert_eq!(out.stdout, "dropped_acct\n");
    let posts = env
        .sim
        .requests()
        .iter()
        .filter(|r| r.method == "POST")
        .count();
    assert_eq!(posts, 1, "the create went through; it was not sent again");
    assert!(env.org().users.contains_key("dropped_acct"));
}

#[test]
fn a_post_answered_503_is_checked_then_retried() {
    let env = with_faults(Faults {
        error_rate: 1.0,
        scope: Some("POST /v1/users".into()),
        limit: Some(1),
        ..Default::default()
    });
    let out = env.run("a.rhai", "accounts::create(\"retried_acct\").username", &[]);
    assert_exit(&out, 0);
    let posts: Vec<u16> = env
        .sim
        .requests()
        .iter()
        .filter(|r| r.method == "POST")
        .map(|r| r.status)
        .collect();
    assert_eq!(posts.len(), 2);
    assert_eq!(posts[1], 200);
}

#[test]
fn the_emulator_faults_are_reproducible_from_the_seed() {
    let run = |seed| {
        let env = with_faults(Faults {
            error_rate: 0.3,
            seed,
            ..Default::default()
        });
        let out = env.run(
            "s.rhai",
            "for i in 0..10 { tokens::list(\"bi_tool\"); }",
            &["--retries", "10"],
        );
        assert_exit(&out, 0);
        env.sim
            .requests()
            .iter()
            .map(|r| r.status)
            .collect::<Vec<_>>()
    };
    assert_eq!(run(7), run(7));
}

/// Against a server that lets 40 requests a second through, a bulk run finds
/// that rate and stays under it: every item succeeds (a throttle is never a
/// failure while the server says when to come back), few requests are
/// throttled after the first wave, and the run takes about as long as the
/// server's rate implies.
#[test]
fn a_rate_limited_server_is_met_at_its_rate() {
    let env = Env::with(
        SEED,
        Behaviour {
            rate_limit: Some(40.0),
            ..Default::default()
        },
    );
    let started = Instant::now();
    let out = env.run(
        "bulk.rhai",
        "let r = parallel(0..150, |i| tokens::list(\"bi_tool\").len()); r.filter(|x| x == 1).len()",
        &["--concurrency", "16"],
    );
    let wall = started.elapsed();
    assert_exit(&out, 0);
    assert_eq!(out.stdout, "150\n", "{out:?}");
    let log = env.sim.requests();
    let ok = log.iter().filter(|r| r.status == 200).count();
    let throttled = log.iter().filter(|r| r.status == 429).count();
    assert!(ok >= 150, "{ok}");
    // The first wave (one request per worker, before any limit is known)
    // may be throttled; after it, at most one in ten. Probing for the rate
    // costs a few 429s: 19-21 of 170 on a busy machine, which a bound of one
    // in twenty (23) left too little room for. A client that hammers gets
    // half its requests throttled; the sharper 5% is the benchmark's row (a),
    // over 1,500 requests.
    assert!(
        throttled <= 16 + ok / 10,
        "{throttled} throttled of {}",
        ok + throttled
    );
    // 150 requests at 40/s is 3.75 s at best (a 4-request burst aside); a
    // client that backs off too far (or stops everyone on each 429) takes
    // several times that. The bound leaves room for a machine busy with
    // other tests: the throttle count above is the sharp check.
    assert!(wall < Duration::from_secs(15), "{wall:?}");
}

/// A dropped token that cannot be revoked at the run's end: the JSON
/// document names it (account and id), and the error says to revoke it by
/// hand, not that the script asked for the exit code.
#[test]
fn a_token_left_unrevoked_is_named_in_the_json_document() {
    let env = with_faults(Faults {
        error_rate: 1.0,
        scope: Some("DELETE /v1/users/*/tokens/*".into()),
        ..Default::default()
    });
    let out = env.run(
        "drop.rhai",
        r#"tokens::create("bi_tool", "dropped"); "done""#,
        &["--retries", "1", "--output", "json"],
    );
    assert_exit(&out, 4);
    let doc = crate::support::json_doc(&out);
    let id = env.org().users["bi_tool"]
        .tokens
        .iter()
        .find(|t| t.name == "dropped")
        .expect("still live")
        .id
        .clone();
    assert_eq!(
        doc["summary"]["unrevoked"],
        serde_json::json!([{"account": "bi_tool", "token_id": id}])
    );
    assert_eq!(doc["summary"]["orphans_revoked"], 0);
    let message = doc["error"]["message"].as_str().unwrap();
    assert_eq!(
        message,
        format!(
            "1 token(s) minted in this run could not be revoked: revoke {id} of bi_tool by hand"
        )
    );
}
