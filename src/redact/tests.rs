//! Redaction: whole, cut short, folded, among thousands.

use super::*;

#[test]
fn registered_secrets_are_replaced() {
    register("s3cr3t-value-for-redaction-test");
    let out = clean("Bearer s3cr3t-value-for-redaction-test was refused");
    assert!(!out.contains("s3cr3t-value"), "{out}");
    assert!(out.contains("<secret "), "{out}");
    assert!(matches!(clean("nothing here"), Cow::Borrowed(_)));
    register("short");
    assert_eq!(clean("a short word"), "a short word");
}

#[test]
fn a_secret_cut_short_is_still_found() {
    let secret = "eyJhbGciOiJIUzI1NiJ9.prefix-and-suffix-test.c2lnbmF0dXJlLXZhbHVlLTAwMTIzNDU2";
    register(secret);
    let tail = &secret[secret.len() - 30..];
    for shown in [&secret[..60], &secret[10..], tail] {
        let text = format!("header was Bearer {shown}!");
        let out = clean(&text);
        assert!(!out.contains(&shown[shown.len() - 16..]), "{shown}: {out}");
        assert!(out.ends_with('!'), "{out}");
    }
    // Another JWT with the same header is not touched.
    let other = "eyJhbGciOiJIUzI1NiJ9.somebody-elses-payload.c2lnbmF0dXJlLW90aGVy";
    assert_eq!(clean(other), other);
}

/// A run that mints ten thousand tokens: each is still found, whole or cut
/// short, among all the others.
#[test]
fn thousands_of_secrets_are_each_found() {
    // Like real tokens: one header, then text that differs throughout.
    let secret = |i: usize| {
        use sha2::Digest;
        let h: String = sha2::Sha256::digest(i.to_string())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("eyJhbGciOiJIUzI1NiJ9.{}.{}", &h[..40], &h[40..])
    };
    for i in 0..10_000 {
        register(&secret(i));
    }
    for i in [0, 4_321, 9_999] {
        let s = secret(i);
        for shown in [&s[..], &s[5..s.len() - 5]] {
            let text = format!("token={shown};");
            let out = clean(&text);
            assert!(!out.contains(&s[30..50]), "{out}");
            assert!(
                out.starts_with("token=<secret ") && out.ends_with(';'),
                "{out}"
            );
        }
    }
    let other = secret(10_000);
    assert_eq!(clean(&other), other);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(1000))]
    /// Whatever surrounds it, a registered secret (of any characters),
    /// whole or cut short before its first window (at a quarter of it, at
    /// most 16 characters from its end), leaves nothing of its middle.
    #[test]
    fn a_registered_secret_never_survives(
        secret in "[a-zA-Z0-9._~é€😀-]{17,90}",
        pre in "\\PC{0,30}",
        post in "\\PC{0,30}",
        cut in 0usize..4,
    ) {
        register(&secret);
        let chars: Vec<char> = secret.chars().collect();
        let n = chars.len();
        let first = (n / 4).min(n - ANCHOR);
        let shown: String = chars[cut * first / 3..].iter().collect();
        let text = format!("{pre}{shown}{post}");
        let out = clean(&text);
        let mid: String = chars[n / 2..(n / 2 + ANCHOR).min(n)].iter().collect();
        proptest::prop_assert!(!out.contains(&mid), "{out}");
    }

    /// A secret of 17 to 32 characters (no common header to skip) is
    /// found by its first 16 characters, its last 16, or any 23 in a row:
    /// none of the piece shown survives.
    #[test]
    fn a_short_secret_cut_short_never_survives(
        secret in "[a-zA-Z0-9._~é€😀-]{17,32}",
        pre in "\\PC{0,30}",
        post in "\\PC{0,30}",
        from in 0usize..16,
        len in 16usize..32,
    ) {
        register(&secret);
        let chars: Vec<char> = secret.chars().collect();
        let n = chars.len();
        let from = from.min(n - ANCHOR);
        let to = (from + len).min(n);
        // The piece holds the start, the end, or 23 characters in a row.
        proptest::prop_assume!(from == 0 || to == n || to - from >= 23);
        let shown: String = chars[from..to].iter().collect();
        let text = format!("{pre}{shown}{post}");
        let out = clean(&text);
        proptest::prop_assert!(!out.contains(&shown), "{shown} in {out}");
    }

    /// A long secret's tail of 16 characters or more (a JWT's signature,
    /// shown alone) is found: none of it survives. So is its head, unless
    /// the secret is a JWT, whose head is the header every token shares (a
    /// Vault or GitHub token, an AWS key).
    #[test]
    fn a_long_secrets_head_or_tail_never_survives(
        secret in "[a-zA-Z0-9._~é€😀-]{33,140}",
        pre in "\\PC{0,30}",
        post in "[ ;!]\\PC{0,30}",
        len in 16usize..40,
        head in proptest::bool::ANY,
    ) {
        proptest::prop_assume!(!(head && secret.starts_with("eyJ")));
        register(&secret);
        let chars: Vec<char> = secret.chars().collect();
        let len = len.min(chars.len());
        let piece = if head { &chars[..len] } else { &chars[chars.len() - len..] };
        let shown: String = piece.iter().collect();
        let text = format!("{pre}{shown}{post}");
        let out = clean(&text);
        proptest::prop_assert!(!out.contains(&shown), "{shown} in {out}");
    }
}

/// A JWT's header is the same for every token: it is left alone, while the
/// rest of a token cut short is found.
#[test]
fn a_jwt_header_alone_is_not_a_secret() {
    let token = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJoZWFkZXItdGVzdCJ9.aGVhZGVyLXRlc3Qtc2lnbmF0dXJlLTAxMjM0NQ";
    register(token);
    let header = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";
    assert_eq!(clean(&format!("alg: {header}.")), format!("alg: {header}."));
    assert!(!clean(&token[..token.len() - 3]).contains("LXRlc3Qtc2ln"));
}

/// A secret folded across lines, or split by spaces, at any width: what
/// is left of the text holds nothing of its middle.
#[test]
fn a_folded_secret_is_found_across_its_line_breaks() {
    let secret = "eyJhbGciOiJIUzI1NiJ9.folded-payload-0123456789abcdef.c2lnbmF0dXJlLWZvbGRlZA";
    register(secret);
    for width in [4, 7, 16, 20, 33] {
        for sep in ["\n", "\r\n", " ", "\n  "] {
            let chars: Vec<char> = secret.chars().collect();
            let folded: Vec<String> = chars.chunks(width).map(|c| c.iter().collect()).collect();
            let text = format!("401: bad token:{sep}{}{sep}(end)", folded.join(sep));
            let out = clean(&text);
            let flat: String = out.chars().filter(|c| !c.is_ascii_whitespace()).collect();
            assert!(!flat.contains("payload-0123"), "{width} {sep:?}: {out}");
            assert!(!flat.contains("bmF0dXJlLWZv"), "{width} {sep:?}: {out}");
            assert!(
                out.starts_with("401: bad token:") && out.ends_with("(end)"),
                "{out}"
            );
        }
    }
    // Words that only meet without their spaces are left alone, a short
    // secret's included.
    assert_eq!(clean("a b\nc"), "a b\nc");
    register("release2024");
    assert_eq!(
        clean("notes for release 2024: rollout"),
        "notes for release 2024: rollout"
    );
    assert!(clean("notes for release2024: rollout").contains("<secret "));
}

/// A span that ends inside a multi-byte character merges with the next
/// one starting in it: neither secret survives.
#[test]
fn spans_meeting_inside_a_character_are_merged() {
    register("abcdefghijklmnopqrstuvwx€yz");
    register("€0123456789ABCDEFGHIJ");
    let out = clean("abcdefghijklmnopqrstuvwx\u{202C}0123456789ABCDEFGHIJ!");
    assert!(!out.contains("0123456789"), "{out}");
    assert!(!out.contains("abcdefghij"), "{out}");
    assert!(out.ends_with('!'), "{out}");
}

#[test]
fn revealed_secrets_pass_through_the_scripts_own_output_only() {
    register("rvld-zq8w5x4p2m7k9t3v6b1n0");
    allow("rvld-zq8w5x4p2m7k9t3v6b1n0");
    assert!(clean_output("x rvld-zq8w5x4p2m7k9t3v6b1n0").contains("rvld-zq8w5"));
    assert!(!clean("x rvld-zq8w5x4p2m7k9t3v6b1n0").contains("rvld-zq8w5"));
}

/// Secrets that share a window with many others (base64-encoded JWTs all
/// start alike) are still found by their own windows, and a string they all
/// share is not taken for each of them.
#[test]
fn a_window_many_secrets_share_is_not_looked_for() {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut encoded = Vec::new();
    for i in 0..20 {
        let jwt = format!(
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJzaGFyZWQtJHtpfSJ9.c2lnbmF0dXJlLXNoYXJlZC13aW5kb3ctdGVzdC0{i:04}"
        );
        let e = b64.encode(jwt.as_bytes());
        register(&e);
        encoded.push(e);
    }
    let head = &encoded[0][..24];
    assert!(encoded.iter().all(|e| e.starts_with(head)));
    // The shared head alone is left alone.
    assert_eq!(clean(&format!("header {head}!")), format!("header {head}!"));
    // Each one is still found, its end included.
    for e in &encoded {
        let text = format!("secret: {e}");
        let out = clean(&text);
        assert!(!out.contains(&e[e.len() - 20..]), "{out}");
    }
}
