//! Which variable names an env file entry, or a command's environment, may
//! carry a token in.

/// Variables a command's behaviour hangs on: a token must never go in one.
const RESERVED_ENV: &[&str] = &[
    "PATH",
    "HOME",
    "SHELL",
    "IFS",
    "ENV",
    "BASH_ENV",
    "PS4",
    "PWD",
    "USER",
    "TMPDIR",
    "CDPATH",
    "PROMPT_COMMAND",
    "SHELLOPTS",
    "BASHOPTS",
    "HOSTALIASES",
    "CLASSPATH",
    "NLSPATH",
    "TERMINFO",
    "EDITOR",
    "VISUAL",
    "PAGER",
    "LANG",
    "LANGUAGE",
    "TZ",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "FTP_PROXY",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "SSLKEYLOGFILE",
    "NODE_EXTRA_CA_CERTS",
];

/// Prefixes of variables that load code or change how an interpreter, the
/// dynamic loader, git or TLS behave.
const RESERVED_PREFIXES: &[&str] = &[
    "LD_",
    "DYLD_",
    "BASH_FUNC",
    "GIT_",
    "PYTHON",
    "PERL",
    "RUBY",
    "NODE_",
    "JAVA_",
    "_JAVA",
    "JDK_",
    "SSL_",
    "GCONV",
    "LOCPATH",
    "LC_",
    "MALLOC",
];

/// Whether `name` may carry a secret to a command: a valid name that does
/// not change how the command runs (`PATH`, `LD_PRELOAD`, ...).
pub fn check_env_name(name: &str) -> Result<(), String> {
    if !valid_env_key(name) {
        return Err(format!(
            "{name:?} is not a variable name (letters, digits and _, not starting with a digit)"
        ));
    }
    let upper = name.to_ascii_uppercase();
    if RESERVED_ENV.contains(&upper.as_str())
        || RESERVED_PREFIXES.iter().any(|p| upper.starts_with(p))
    {
        return Err(format!(
            "{name} changes how a command runs; choose another variable"
        ));
    }
    Ok(())
}

pub fn valid_env_key(key: &str) -> bool {
    key.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}
