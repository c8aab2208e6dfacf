//! Tests of URL building and of what reaches the wire.

use super::*;

#[test]
fn segments_that_could_change_the_route_are_refused() {
    for bad in [
        "", ".", "..", "..\t", "a\nb", "x\ty", "a/b", "a\\b", "\u{7f}", "\u{85}",
    ] {
        assert!(check_segment(bad).is_err(), "{bad:?}");
    }
    for good in [
        "etl_pipeline",
        "a b",
        "x?y",
        "100%",
        "émile",
        "11111111-1111-4111-8111-111111111111",
    ] {
        assert!(check_segment(good).is_ok(), "{good:?}");
    }
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn client() -> &'static Client {
        static CLIENT: std::sync::OnceLock<Client> = std::sync::OnceLock::new();
        CLIENT.get_or_init(|| {
            Client::new(ClientConfig::new(
                Url::parse("http://127.0.0.1:9/prefix/").unwrap(),
                SecretString::new("property-test-token"),
            ))
            .unwrap()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        /// Any username or token id is either refused, or lands in exactly the
        /// segment it was meant for: no normalisation, no extra or lost segment.
        #[test]
        fn a_name_is_refused_or_stays_in_its_segment(name in any::<String>(), id in "\\PC{0,12}|[./\\\\\t\r\n %?#]{1,6}") {
            let c = client();
            for (segments, at) in [
                (vec!["v1", "users", name.as_str(), "tokens"], 2),
                (vec!["v1", "users", "acct", "tokens", id.as_str()], 4),
            ] {
                let value = segments[at];
                match c.url(&segments) {
                    Err(_) => prop_assert!(check_segment(value).is_err()),
                    Ok(url) => {
                        // What a server parses from the request line.
                        let reparsed = Url::parse(url.as_str()).unwrap();
                        let got: Vec<String> = reparsed
                            .path_segments()
                            .unwrap()
                            .map(percent_decode)
                            .collect();
                        let mut want = vec!["prefix".to_string()];
                        want.extend(segments.iter().map(|s| s.to_string()));
                        prop_assert_eq!(got, want);
                        prop_assert!(!url.as_str().chars().any(|c| c.is_control()));
                    }
                }
            }
        }
    }

    fn percent_decode(s: &str) -> String {
        let bytes = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' && i + 2 < bytes.len() {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        String::from_utf8(out).unwrap()
    }
}
