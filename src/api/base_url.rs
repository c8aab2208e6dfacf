//! Checks on the API base URL: a token must never travel in clear text to a
//! remote host, and a URL must not smuggle credentials or a query.

use url::{Host, Url};

/// Parses and checks a base URL: `https`, or `http` for loopback hosts only;
/// no user info, query or fragment. A path prefix is allowed.
pub fn parse(raw: &str) -> Result<Url, String> {
    let url = Url::parse(raw.trim()).map_err(|e| format!("invalid API URL {raw:?}: {e}"))?;
    let host = url
        .host()
        .ok_or_else(|| format!("invalid API URL {raw:?}: it has no host"))?;
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&host) => {}
        "http" => {
            return Err(format!(
                "refusing API URL {raw:?}: plain http is allowed only for loopback hosts (127.0.0.1, ::1, localhost); use https"
            ))
        }
        other => {
            return Err(format!(
                "invalid API URL {raw:?}: scheme {other:?} is not supported; use https"
            ))
        }
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(
            "refusing API URL: it contains user info (credentials); pass the token with --token-file or MOTHERDUCK_ADMIN_TOKEN instead".to_string(),
        );
    }
    if url.query().is_some() {
        return Err(format!(
            "invalid API URL {raw:?}: it must not contain a query (?...)"
        ));
    }
    if url.fragment().is_some() {
        return Err(format!(
            "invalid API URL {raw:?}: it must not contain a fragment (#...)"
        ));
    }
    Ok(url)
}

fn is_loopback(host: &Host<&str>) -> bool {
    match host {
        Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
        Host::Ipv4(ip) => ip.is_loopback(),
        Host::Ipv6(ip) => ip.is_loopback(),
    }
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn accepts_https_and_loopback_http() {
        assert!(parse("https://api.motherduck.com").is_ok());
        assert!(parse("https://proxy.example.com/prefix/").is_ok());
        assert!(parse("http://127.0.0.1:8080").is_ok());
        assert!(parse("http://[::1]:8080").is_ok());
        assert!(parse("http://localhost:1").is_ok());
    }

    #[test]
    fn rejects_the_rest() {
        assert!(parse("http://api.motherduck.com")
            .unwrap_err()
            .contains("only for loopback"));
        assert!(parse("https://u:p@api.motherduck.com")
            .unwrap_err()
            .contains("user info"));
        assert!(parse("https://api.motherduck.com/?a=1").is_err());
        assert!(parse("https://api.motherduck.com/#x").is_err());
        assert!(parse("ftp://x").is_err());
        assert!(parse("not a url").is_err());
    }
}
