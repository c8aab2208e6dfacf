//! Target templates: `{account}/{name}.token`, `MOTHERDUCK_TOKEN_{ACCOUNT}`,
//! `vault kv put secret/{account} token=-`. Names come from the server and
//! are not trusted: how a value goes in depends on where it goes.
//!
//! - `file`: a value becomes one file name: letters, digits, `_`, `-` and `.`
//!   stay, anything else (a `/`, a leading `.`) is percent-encoded, so no name
//!   climbs out of the sink directory and two different names never meet;
//! - `env`: `{ACCOUNT}`/`{NAME}` are upper-cased with other characters turned
//!   into `_` (names can meet here: targets are checked before anything is
//!   minted), and the result must be a valid variable name;
//! - `shell`: a value must be a plain word, safe unquoted in `sh`, that cannot
//!   pose as an option or a path (`[A-Za-z0-9_][A-Za-z0-9._@%+=:,-]*`, no
//!   `..`), or the expansion fails rather than risk an injection;
//! - `text`: values as they are (for messages and labels).

use super::valid_env_key;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Env,
    Shell,
    Text,
    /// A Kubernetes name: lowercase letters and digits, anything else `-`.
    Dns,
}

impl Kind {
    pub fn parse(s: &str) -> Option<Kind> {
        match s {
            "file" => Some(Kind::File),
            "env" => Some(Kind::Env),
            "shell" => Some(Kind::Shell),
            "text" => Some(Kind::Text),
            "dns" => Some(Kind::Dns),
            _ => None,
        }
    }
}

fn file_part(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for (i, c) in v.chars().enumerate() {
        let keep = c.is_ascii_alphanumeric() || matches!(c, '_' | '-') || (c == '.' && i > 0);
        if keep {
            out.push(c);
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    if out.is_empty() {
        out.push_str("%00");
    }
    out
}

fn env_part(v: &str) -> String {
    v.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

fn shell_safe(v: &str) -> bool {
    v.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._@%+=:,-".contains(c))
        && !v.contains("..")
}

/// Expands `{account}`, `{ACCOUNT}`, `{name}`, `{NAME}` for a target of this kind.
pub fn expand(template: &str, account: &str, name: &str, kind: Kind) -> Result<String, String> {
    let value = |placeholder: &str| -> Result<String, String> {
        let (raw, upper) = match placeholder {
            "{account}" => (account, false),
            "{ACCOUNT}" => (account, true),
            "{name}" => (name, false),
            "{NAME}" => (name, true),
            _ => unreachable!("only known placeholders are expanded"),
        };
        match kind {
            Kind::File => Ok(file_part(raw)),
            Kind::Env => Ok(env_part(raw)),
            Kind::Shell => {
                if shell_safe(raw) {
                    Ok(if upper {
                        raw.to_uppercase()
                    } else {
                        raw.to_string()
                    })
                } else {
                    Err(format!(
                        "{} cannot go into a command: only a plain word can (letters, digits and ._@%+=:,- not first, no / or ..); use a file or env-file sink, or rename it",
                        crate::output::escape(&format!("{raw:?}"))
                    ))
                }
            }
            Kind::Dns => Ok(raw
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() {
                        c.to_ascii_lowercase()
                    } else {
                        '-'
                    }
                })
                .collect()),
            Kind::Text => Ok(if upper {
                raw.to_uppercase()
            } else {
                raw.to_string()
            }),
        }
    };
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(i) = rest.find('{') {
        out.push_str(&rest[..i]);
        let after = &rest[i..];
        let known = ["{account}", "{ACCOUNT}", "{name}", "{NAME}"]
            .into_iter()
            .find(|p| after.starts_with(p));
        match known {
            Some(p) => {
                out.push_str(&value(p)?);
                rest = &after[p.len()..];
            }
            None => {
                out.push('{');
                rest = &after[1..];
            }
        }
    }
    out.push_str(rest);
    if kind == Kind::Env && !valid_env_key(&out) {
        return Err(format!(
            "{} is not a valid environment variable name",
            crate::output::escape(&format!("{out:?}"))
        ));
    }
    if kind == Kind::File
        && std::path::Path::new(&out)
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return Err(format!(
            "{} climbs out of the sink directory",
            crate::output::escape(&out)
        ));
    }
    Ok(out)
}

/// A `{word}` in a template that looks like a misspelt placeholder
/// (`{acount}`), for declaration checks. `${VAR}` and other braces pass.
pub fn misspelt_placeholder(template: &str) -> Option<String> {
    let bytes = template.as_bytes();
    let mut i = 0;
    while let Some(off) = template[i..].find('{') {
        let start = i + off;
        let end = match template[start..].find('}') {
            Some(e) => start + e,
            None => return None,
        };
        let word = &template[start + 1..end];
        let after_dollar = start > 0 && bytes[start - 1] == b'$';
        if !after_dollar && !word.is_empty() && word.chars().all(|c| c.is_ascii_alphabetic()) {
            let lower = word.to_lowercase();
            let near = ["account", "name"]
                .iter()
                .any(|p| lower != *p && strsim::damerau_levenshtein(&lower, p) <= 2);
            if near {
                return Some(format!("{{{word}}}"));
            }
        }
        i = end + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cannot_escape_their_place() {
        assert_eq!(
            expand("{account}/{name}.token", "tenant_a", "ci-build", Kind::File).unwrap(),
            "tenant_a/ci-build.token"
        );
        assert_eq!(
            expand(
                "{account}/{name}.token",
                "t",
                "../../etc/passwd",
                Kind::File
            )
            .unwrap(),
            "t/%2E.%2F..%2Fetc%2Fpasswd.token"
        );
        assert_eq!(
            expand("MD_{ACCOUNT}_{NAME}", "tenant_a", "ci build", Kind::Env).unwrap(),
            "MD_TENANT_A_CI_BUILD"
        );
        assert!(expand("MD_{name}", "a", "x", Kind::Env).is_ok());
        assert!(expand("{name}", "a", "1x", Kind::Env).is_err());
        assert!(expand("vault put md/{name}", "a", "x; rm -rf /", Kind::Shell).is_err());
        for bad in [
            "../tenant_b/app",
            "--all",
            "-rf",
            ".hidden",
            "a/b",
            "a..b",
            "",
        ] {
            assert!(
                expand("cmd {name}", "a", bad, Kind::Shell).is_err(),
                "{bad:?}"
            );
        }
        assert_eq!(
            expand("vault put md/{account} t=-", "tenant_a", "x", Kind::Shell).unwrap(),
            "vault put md/tenant_a t=-"
        );
        assert_eq!(
            expand("awk '{print}' ${HOME}", "a", "b", Kind::Text).unwrap(),
            "awk '{print}' ${HOME}"
        );
    }

    #[test]
    fn misspellings_are_caught_and_shell_braces_pass() {
        assert_eq!(
            misspelt_placeholder("{acount}.token").as_deref(),
            Some("{acount}")
        );
        assert_eq!(misspelt_placeholder("{nmae}").as_deref(), Some("{nmae}"));
        assert_eq!(misspelt_placeholder("${HOME}/{account}"), None);
        assert_eq!(misspelt_placeholder("awk '{print $1}'"), None);
        assert_eq!(misspelt_placeholder("{account}/{name}"), None);
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        /// No account or token name can climb out of its directory, make an
        /// invalid variable name pass, or reach a shell with a metacharacter.
        #[test]
        fn names_never_escape_their_place(account in any::<String>(), name in any::<String>()) {
            let file = expand("{account}/{name}.token", &account, &name, Kind::File).unwrap();
            let parts: Vec<&str> = file.split('/').collect();
            prop_assert_eq!(parts.len(), 2);
            prop_assert!(parts.iter().all(|p| !p.starts_with('.') && !p.is_empty()));
            // Injective: a different name is a different file.
            let other = format!("{name}x");
            prop_assert_ne!(expand("{name}", &account, &name, Kind::File).unwrap(), expand("{name}", &account, &other, Kind::File).unwrap());
            if let Ok(key) = expand("MD_{ACCOUNT}_{NAME}", &account, &name, Kind::Env) {
                prop_assert!(valid_env_key(&key));
            }
            if let Ok(cmd) = expand("vault kv put md/{account}/{name} token=-", &account, &name, Kind::Shell) {
                prop_assert!(cmd.chars().all(|c| c.is_ascii_alphanumeric() || " ._@%+=:,/-".contains(c)), "{}", cmd);
                prop_assert!(!cmd.contains("..") && !cmd.contains(" -"), "{}", cmd);
            }
        }
    }
}
