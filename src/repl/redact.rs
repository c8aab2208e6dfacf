//! Keeps secrets out of the REPL history: a line that holds a secret this
//! process has seen (see `crate::redact`), or anything shaped like a token,
//! is stored redacted.

const REDACTED: &str = "<redacted>";

fn token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '+' | '/' | '=')
}

/// Whether a run of token characters looks like a credential: a JWT
/// (`eyJ….….…`), or a long string mixing letters and digits.
fn looks_like_token(word: &str) -> bool {
    if word.starts_with("eyJ") && word.matches('.').count() >= 2 && word.len() >= 20 {
        return true;
    }
    let letters = word.chars().filter(|c| c.is_ascii_alphabetic()).count();
    let digits = word.chars().filter(|c| c.is_ascii_digit()).count();
    word.len() >= 32 && letters >= 8 && digits >= 4 && !word.contains("::")
}

/// The line as it may be stored: known secrets and token-like values replaced.
pub fn for_history(line: &str) -> String {
    let out = crate::redact::clean_with(line, REDACTED).into_owned();
    let mut result = String::with_capacity(out.len());
    let mut word = String::new();
    let flush = |word: &mut String, result: &mut String| {
        if looks_like_token(word) {
            result.push_str(REDACTED);
        } else {
            result.push_str(word);
        }
        word.clear();
    };
    for c in out.chars() {
        if token_char(c) {
            word.push(c);
        } else {
            flush(&mut word, &mut result);
            result.push(c);
        }
    }
    flush(&mut word, &mut result);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_known_secrets_and_token_shapes() {
        crate::redact::register("plain-known-value");
        assert_eq!(
            for_history("secrets::to_file(\"x\", \"plain-known-value\")"),
            "secrets::to_file(\"x\", \"<redacted>\")"
        );
        assert_eq!(
            for_history("tokens::verify(\"a\", \"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig123\")"),
            "tokens::verify(\"a\", \"<redacted>\")"
        );
        assert_eq!(
            for_history("let k = \"Xk29dk3LmQ8zPw02nVb7Rt5Yq1Ws4Ed6\";"),
            "let k = \"<redacted>\";"
        );
        let ordinary =
            "let t = tokens::create(\"etl_pipeline\", #{name: \"airflow-2026\", ttl: \"90d\"});";
        assert_eq!(for_history(ordinary), ordinary);
        assert_eq!(for_history("t.token.reveal()"), "t.token.reveal()");
    }
}
