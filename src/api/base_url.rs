//! Checks on the API base URL: a token must never travel in clear text to a
//! remote host, and a URL must not smuggle credentials or a query. Messages
//! never repeat what could be a credential: the URL is shown as scheme, host,
//! port and path only.

use url::{Host, Url};

/// The URL as messages may show it: no user info, no query, no fragment.
pub fn shown(url: &Url) -> String {
    let host = url.host_str().unwrap_or("");
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    let path = if url.path() == "/" { "" } else { url.path() };
    crate::output::escape(&format!("{}://{host}{port}{path}", url.scheme())).into_owned()
}

/// Which API a URL names, as the journal of runs keeps it: scheme, host, port
/// and path, without a trailing slash (`https://api.motherduck.com`).
pub fn identity(url: &Url) -> String {
    let host = url.host_str().unwrap_or("");
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    let path = url.path().trim_end_matches('/');
    format!("{}://{host}{port}{path}", url.scheme())
}

/// Parses and checks a base URL: `https`, or `http` for loopback hosts only;
/// no user info, query or fragment. A path prefix is allowed.
pub fn parse(raw: &str) -> Result<Url, String> {
    let url = Url::parse(raw.trim()).map_err(|e| format!("invalid API URL: {e}"))?;
    let host = url
        .host()
        .ok_or_else(|| format!("invalid API URL {:?}: it has no host", shown(&url)))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "refusing API URL {:?}: it contains user info (credentials); pass the token with --token-file or MOTHERDUCK_ADMIN_TOKEN instead",
            shown(&url)
        ));
    }
    if url.query().is_some() {
        return Err(format!(
            "refusing API URL {:?}: it must not contain a query (?...)",
            shown(&url)
        ));
    }
    if url.fragment().is_some() {
        return Err(format!(
            "refusing API URL {:?}: it must not contain a fragment (#...)",
            shown(&url)
        ));
    }
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&host) => {}
        "http" => {
            return Err(format!(
                "refusing API URL {:?}: plain http is allowed only for loopback hosts (127.0.0.1, ::1, localhost); use https",
                shown(&url)
            ))
        }
        other => {
            return Err(format!(
                "invalid API URL {:?}: scheme {other:?} is not supported; use https",
                shown(&url)
            ))
        }
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
    fn one_api_has_one_identity() {
        let id = |u: &str| super::identity(&parse(u).unwrap());
        assert_eq!(
            id("https://API.motherduck.com:443/"),
            "https://api.motherduck.com"
        );
        assert_eq!(
            id("https://api.motherduck.com"),
            "https://api.motherduck.com"
        );
        assert_eq!(
            id("https://p.example.com/md/"),
            id("https://p.example.com/md")
        );
        assert_ne!(
            id("https://p.example.com/md"),
            id("https://p.example.com/other")
        );
        assert_ne!(id("http://127.0.0.1:1"), id("http://127.0.0.1:2"));
    }

    #[test]
    fn accepts_https_and_loopback_http() {
        assert!(parse("https://api.motherduck.com").is_ok());
        assert!(parse("https://proxy.example.com/prefix/").is_ok());
        assert!(parse("http://127.0.0.1:8080").is_ok());
        assert!(parse("http://[::1]:8080").is_ok());
        assert!(parse("http://localhost:1").is_ok());
    }

    #[test]
    fn rejects_the_rest_without_repeating_credentials() {
        assert!(parse("http://api.motherduck.com")
            .unwrap_err()
            .contains("only for loopback"));
        for raw in [
            "https://u:PW123@api.motherduck.com",
            "http://user:PW123@host",
            "ftp://user:PW123@x",
            "https://api.motherduck.com/?token=PW123",
            "https://api.motherduck.com/#tok=PW123",
            "https://api.motherduck.com/x?a=PW123#PW123",
        ] {
            let e = parse(raw).unwrap_err();
            assert!(!e.contains("PW123"), "{raw} → {e}");
        }
        assert!(parse("https://u:p@api.motherduck.com")
            .unwrap_err()
            .contains("user info"));
        assert!(parse("not a url").is_err());
    }
}
