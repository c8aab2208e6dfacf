//! `postgres://` state URLs: parsed strictly (an unknown parameter is an
//! error, not a silent default), with the password from the URL, `PGPASSWORD`
//! or `~/.pgpass`, and shown only without it.

use super::{Result, StoreError};
use crate::api::SecretString;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    /// TLS when the server offers it (libpq's default).
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

#[derive(Clone)]
pub struct StateUrl {
    /// A host name, an address, or a directory holding the server's socket.
    pub host: String,
    pub port: u16,
    pub dbname: String,
    pub user: String,
    password: Option<SecretString>,
    pub sslmode: SslMode,
    pub sslrootcert: Option<PathBuf>,
    pub connect_timeout: Duration,
    pub application_name: String,
    /// Whose state it is: the profile's name (`default` without one). One
    /// database holds one organization's state, as one SQLite file does.
    pub scope: String,
}

impl std::fmt::Debug for StateUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StateUrl({})", self.shown())
    }
}

/// Whether a `--state` value names a PostgreSQL server.
pub fn is_postgres(s: &str) -> bool {
    let lower = s.trim().to_ascii_lowercase();
    lower.starts_with("postgres://") || lower.starts_with("postgresql://")
}

impl StateUrl {
    /// Parses a URL; `env` reads `PGPASSWORD`, `PGUSER`, `PGPASSFILE`, `HOME`, `USER`.
    pub fn parse(raw: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<StateUrl> {
        let bad = |why: String| StoreError(format!("invalid state URL: {why}"));
        if !is_postgres(raw) {
            return Err(bad(
                "it must start with postgres:// or postgresql://".to_string()
            ));
        }
        let url = url::Url::parse(raw.trim()).map_err(|e| bad(e.to_string()))?;
        // The password as written (percent-encoded) is as secret as decoded.
        if let Some(p) = url.password() {
            crate::redact::register(p);
        }
        for (k, v) in url.query_pairs() {
            if k == "password" {
                crate::redact::register(&v);
            }
        }
        if url.fragment().is_some() {
            return Err(bad(
                "it has a #fragment, which would hide what follows it".into()
            ));
        }
        let mut names = std::collections::HashSet::new();
        for (k, _) in url.query_pairs() {
            if !names.insert(k.to_string()) {
                return Err(bad(format!("parameter {k:?} is given twice")));
            }
        }
        let decode = |s: &str| -> Result<String> {
            percent_decode(s)
                .ok_or_else(|| bad("a part of it is not valid percent-encoded UTF-8".into()))
        };
        let mut host = url
            .host_str()
            .map(|h| h.trim_start_matches('[').trim_end_matches(']').to_string())
            .filter(|h| !h.is_empty());
        let mut port = url.port();
        let mut user = (!url.username().is_empty())
            .then(|| decode(url.username()))
            .transpose()?;
        let mut password = url.password().map(decode).transpose()?;
        let mut dbname = url
            .path()
            .strip_prefix('/')
            .filter(|p| !p.is_empty())
            .map(decode)
            .transpose()?;
        let mut sslmode = None;
        let mut sslrootcert = None;
        let mut connect_timeout = CONNECT_TIMEOUT;
        let mut application_name = "mdops".to_string();
        for (k, v) in url.query_pairs() {
            let v = v.to_string();
            match k.as_ref() {
                "sslmode" => {
                    sslmode = Some(match v.as_str() {
                        "disable" => SslMode::Disable,
                        "allow" | "prefer" => SslMode::Prefer,
                        "require" => SslMode::Require,
                        "verify-ca" => SslMode::VerifyCa,
                        "verify-full" => SslMode::VerifyFull,
                        other => {
                            return Err(bad(format!(
                                "sslmode={other:?} is not one of disable, allow, prefer, require, verify-ca, verify-full"
                            )))
                        }
                    })
                }
                "sslrootcert" => sslrootcert = Some(PathBuf::from(v)),
                "connect_timeout" => {
                    let secs: u64 = v.parse().map_err(|_| {
                        bad(format!("connect_timeout={v:?} is not a number of seconds"))
                    })?;
                    connect_timeout = Duration::from_secs(secs.clamp(1, 600));
                }
                "application_name" => application_name = v,
                "host" => host = Some(v),
                "port" => {
                    port = Some(
                        v.parse()
                            .map_err(|_| bad(format!("port={v:?} is not a port number")))?,
                    )
                }
                "user" => user = Some(v),
                "password" => password = Some(v),
                "dbname" => dbname = Some(v),
                other => {
                    return Err(bad(format!(
                        "unknown parameter {other:?} (known: sslmode, sslrootcert, connect_timeout, application_name, host, port, user, password, dbname)"
                    )))
                }
            }
        }
        let nonempty = |k: &str| env(k).filter(|v| !v.is_empty());
        let user = user
            .or_else(|| nonempty("PGUSER"))
            .or_else(|| nonempty("USER"))
            .ok_or_else(|| bad("it names no user, and neither PGUSER nor USER is set".into()))?;
        let host = host.unwrap_or_else(|| "localhost".to_string());
        // Unless told otherwise, TLS is required off this machine: with
        // `prefer`, someone on the path could answer "no TLS" and be sent the
        // password in clear.
        let local = host.starts_with('/')
            || matches!(host.as_str(), "localhost" | "127.0.0.1" | "::1")
            || host.starts_with("127.");
        let sslmode = sslmode.unwrap_or(if local {
            SslMode::Prefer
        } else {
            SslMode::Require
        });
        let port = port.unwrap_or(5432);
        let dbname = dbname.unwrap_or_else(|| user.clone());
        let password = match password {
            Some(p) => Some(SecretString::new(p)),
            None => nonempty("PGPASSWORD").map(SecretString::new).or_else(|| {
                pgpass_file(env).and_then(|f| pgpass_lookup(&f, &host, port, &dbname, &user))
            }),
        };
        if let Some(p) = &password {
            crate::redact::register(p.expose());
        }
        Ok(StateUrl {
            host,
            port,
            dbname,
            user,
            password,
            sslmode,
            sslrootcert,
            connect_timeout,
            application_name,
            scope: "default".to_string(),
        })
    }

    /// `host:port/database`, for messages.
    pub fn place(&self) -> String {
        format!("{}:{}/{}", self.host, self.port, self.dbname)
    }

    /// The URL without its password.
    pub fn shown(&self) -> String {
        format!("postgresql://{}@{}", self.user, self.place())
    }

    pub fn tls(&self) -> bool {
        self.sslmode != SslMode::Disable && !self.host.starts_with('/')
    }

    pub fn config(&self) -> Result<postgres::Config> {
        let mut c = postgres::Config::new();
        if self.host.starts_with('/') {
            c.host_path(&self.host);
        } else {
            c.host(&self.host);
        }
        c.port(self.port)
            .user(&self.user)
            .dbname(&self.dbname)
            .application_name(&self.application_name)
            .connect_timeout(self.connect_timeout)
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(30))
            // A black-holed network or a stuck server fails a statement
            // instead of blocking the run (and its pre-write checks) for minutes.
            .tcp_user_timeout(Duration::from_secs(30))
            .options("-c statement_timeout=60000");
        if let Some(p) = &self.password {
            c.password(p.expose());
        }
        c.ssl_mode(match self.sslmode {
            SslMode::Disable => postgres::config::SslMode::Disable,
            SslMode::Prefer => postgres::config::SslMode::Prefer,
            _ => postgres::config::SslMode::Require,
        });
        Ok(c)
    }

    /// TLS that always verifies the server: against `sslrootcert` when given,
    /// else the system's trust store. (libpq skips verification below
    /// `verify-ca`; mdops does not, because the journal's integrity and the
    /// database password ride on this connection.)
    pub fn tls_config(&self) -> Result<rustls::ClientConfig> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        match &self.sslrootcert {
            Some(path) => {
                use rustls::pki_types::pem::PemObject;
                let mut roots = rustls::RootCertStore::empty();
                let certs = rustls::pki_types::CertificateDer::pem_file_iter(path)
                    .map_err(|e| StoreError(format!("sslrootcert {}: {e}", path.display())))?;
                for cert in certs {
                    let cert = cert
                        .map_err(|e| StoreError(format!("sslrootcert {}: {e}", path.display())))?;
                    roots
                        .add(cert)
                        .map_err(|e| StoreError(format!("sslrootcert {}: {e}", path.display())))?;
                }
                Ok(rustls::ClientConfig::builder()
                    .with_root_certificates(roots)
                    .with_no_client_auth())
            }
            None => {
                use rustls_platform_verifier::ConfigVerifierExt;
                rustls::ClientConfig::with_platform_verifier()
                    .map_err(|e| StoreError(format!("cannot load the system's trust store: {e}")))
            }
        }
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The password for a connection from `~/.pgpass` (or `$PGPASSFILE`), as libpq
/// reads it: `host:port:database:user:password`, `*` matching anything, `\`
/// escaping `:` and `\`; ignored when others can read the file.
pub fn pgpass_lookup(
    file: &Path,
    host: &str,
    port: u16,
    db: &str,
    user: &str,
) -> Option<SecretString> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(file).ok()?.permissions().mode();
        if mode & 0o077 != 0 {
            tracing::warn!(file = %file.display(), "ignoring a password file others can read; make it 0600");
            return None;
        }
    }
    let text = std::fs::read_to_string(file).ok()?;
    let port = port.to_string();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let fields = split_pgpass(line);
        if fields.len() != 5 {
            continue;
        }
        let want = [host, port.as_str(), db, user];
        if fields[..4]
            .iter()
            .zip(want)
            .all(|(f, w)| f == "*" || f == w)
        {
            return Some(SecretString::new(fields[4].clone()));
        }
    }
    None
}

fn split_pgpass(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    fields.last_mut().expect("one").push(n);
                }
            }
            ':' if fields.len() < 5 => fields.push(String::new()),
            _ => fields.last_mut().expect("one").push(c),
        }
    }
    fields
}

/// Where `~/.pgpass` is for this process.
pub fn pgpass_file(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    if let Some(p) = env("PGPASSFILE").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(p));
    }
    env("HOME")
        .filter(|v| !v.is_empty())
        .map(|h| PathBuf::from(h).join(".pgpass"))
}

/// The connect timeout when the URL gives none.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pgpass_matches_like_libpq() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pgpass");
        std::fs::write(
            &file,
            "# comment\nother:5432:*:u:nope\nlocalhost:5432:db\\:x:u:p\\:w\\\\d\n*:*:*:u:fallback\n",
        )
        .unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let got = |h, p, d, u| pgpass_lookup(&file, h, p, d, u).map(|s| s.expose().to_string());
        assert_eq!(
            got("localhost", 5432, "db:x", "u").as_deref(),
            Some("p:w\\d")
        );
        assert_eq!(got("elsewhere", 1, "any", "u").as_deref(), Some("fallback"));
        assert_eq!(got("elsewhere", 1, "any", "v"), None);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
            assert_eq!(
                got("localhost", 5432, "db:x", "u"),
                None,
                "readable by others: ignored"
            );
        }
    }

    fn env(k: &str) -> Option<String> {
        match k {
            "USER" => Some("osuser".into()),
            _ => None,
        }
    }

    #[test]
    fn parts_and_defaults() {
        let u = StateUrl::parse(
            "postgresql://ops:s%40cret@db.example:6543/md_state?sslmode=verify-full",
            &env,
        )
        .unwrap();
        assert_eq!(u.place(), "db.example:6543/md_state");
        assert_eq!(u.user, "ops");
        assert_eq!(u.password.as_ref().unwrap().expose(), "s@cret");
        assert_eq!(u.sslmode, SslMode::VerifyFull);
        assert!(!format!("{u:?}").contains("cret"));
        assert!(!u.shown().contains("cret"));
        let d = StateUrl::parse("postgres://", &env).unwrap();
        assert_eq!(d.place(), "localhost:5432/osuser");
        assert_eq!(d.sslmode, SslMode::Prefer, "on this machine");
        let r = StateUrl::parse("postgres://u@db.example/x", &env).unwrap();
        assert_eq!(
            r.sslmode,
            SslMode::Require,
            "TLS off this machine unless told"
        );
        let e =
            StateUrl::parse("postgres://u@h/db?sslmode=disable&sslmode=require", &env).unwrap_err();
        assert!(e.0.contains("given twice"), "{e}");
        let e = StateUrl::parse("postgres://u@h/db#x?sslmode=disable", &env).unwrap_err();
        assert!(e.0.contains("fragment"), "{e}");
        let s = StateUrl::parse("postgres:///st?host=/run/postgresql", &env).unwrap();
        assert!(!s.tls(), "a unix socket is not encrypted");
        assert_eq!(s.host, "/run/postgresql");
    }

    #[test]
    fn mistakes_are_named() {
        let e = StateUrl::parse("postgres://h/db?sslmod=require", &env).unwrap_err();
        assert!(e.0.contains("unknown parameter \"sslmod\""), "{e}");
        let e = StateUrl::parse("postgres://h/db?sslmode=on", &env).unwrap_err();
        assert!(e.0.contains("sslmode=\"on\""), "{e}");
        let e = StateUrl::parse("mysql://h/db", &env).unwrap_err();
        assert!(e.0.contains("postgres://"), "{e}");
    }
}
