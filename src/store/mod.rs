//! State: the inventory of service accounts (the API has historically no
//! list of them), the token journal (what was minted, delivered, verified and
//! revoked), and the audit log of mutating calls.
//!
//! It lives in a local SQLite file (WAL mode and a busy timeout make
//! concurrent cron runs safe) or on a PostgreSQL server shared by runners.
//! Nothing here ever holds a secret: tokens are known by an HMAC fingerprint
//! keyed with a per-install key (in the database, for PostgreSQL).

mod alive;
mod announce;
mod audit;
mod conn;
pub mod copy;
pub(crate) mod db;
mod durable;
pub mod import;
mod inventory;
mod journal;
pub mod pg;
mod pg_url;
mod runs;
mod schema;

pub use alive::{host_name, Alive, Claim};
pub use pg_url::{is_postgres, StateUrl};

pub use audit::{AuditFilter, AuditRecord};
pub use inventory::{InventoryEntry, Source};
pub use journal::{group_of, JournalEntry};
pub use runs::{Attempt, Left, Org, RunRecord};

use crate::api::SecretString;
use conn::{Conn, Shared};
use db::{Sql, P};
use hmac::{KeyInit, Mac};
use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone, thiserror::Error, PartialEq)]
#[error("{0}")]
pub struct StoreError(pub String);

pub type Result<T> = std::result::Result<T, StoreError>;

pub struct Store {
    conn: Shared,
    pg: bool,
    key: Vec<u8>,
    /// The data directory of a SQLite store (its liveness locks live there).
    dir: Option<PathBuf>,
    /// Where the state lives, for messages: a file path or `host:port/db`.
    pub place: String,
    /// The SQLite file's write-ahead log, synced before writes to the outside.
    wal: Option<durable::Wal>,
}

/// How long a writer waits for another process's transaction before failing.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The state file for a profile: `state.db`, or `state-NAME.db` for a named profile,
/// so that organizations behind different profiles never share an inventory.
pub fn db_path(dir: &Path, profile: Option<&str>) -> PathBuf {
    match profile {
        Some(p) => dir.join(format!("state-{p}.db")),
        None => dir.join("state.db"),
    }
}

impl Store {
    /// Opens (creating if needed) the state in `dir`, migrating the schema.
    pub fn open(dir: &Path, profile: Option<&str>) -> Result<Store> {
        create_private_dir(dir)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            if let Ok(m) = std::fs::metadata(dir) {
                if m.permissions().mode() & 0o022 != 0 {
                    tracing::warn!(
                        dir = %dir.display(),
                        mode = format!("{:o}", m.permissions().mode() & 0o777),
                        "the data directory can be written by other users: they could tamper with the journal; make it 0700"
                    );
                }
            }
        }
        let path = db_path(dir, profile);
        let key = install_key(dir)?;
        // Created 0600 before SQLite opens it (its -wal and -shm files take the same mode).
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            let _ = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&path);
        }
        let conn = Connection::open(&path).map_err(|e| describe(&path, e))?;
        let mut store = Store {
            conn: Shared::new(Conn::Lite(conn::Lite::new(conn))),
            pg: false,
            key,
            dir: Some(dir.to_path_buf()),
            place: path.display().to_string(),
            wal: None,
        };
        store
            .prepare_patiently()
            .map_err(|e| StoreError(format!("{}: {}", path.display(), e.0)))?;
        let wal = durable::Wal::of(&mut store.conn(), &path);
        store.wal = wal.map_err(|e| StoreError(format!("{}: {}", path.display(), e.0)))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
        }
        Ok(store)
    }

    /// A throw-away store (the sandbox's organization lives only as long as the run).
    pub fn in_memory() -> Result<Store> {
        let conn = Connection::open_in_memory().map_err(|e| StoreError(e.to_string()))?;
        let store = Store {
            conn: Shared::new(Conn::Lite(conn::Lite::new(conn))),
            pg: false,
            key: rand::random::<[u8; 32]>().to_vec(),
            dir: None,
            place: "memory".to_string(),
            wal: None,
        };
        store.prepare()?;
        Ok(store)
    }

    /// Connects to state on a PostgreSQL server, migrating its schema and
    /// creating the shared journal key on first use.
    pub fn connect(url: &StateUrl) -> Result<Store> {
        let lost = std::sync::Arc::new(std::sync::OnceLock::new());
        let mut conn = Conn::Pg(Box::new(pg::PgConn::connect(url, lost.clone())?));
        schema::migrate_pg(&mut conn)?;
        let fresh: [u8; 32] = rand::random();
        let stored = setting_once(&mut conn, "journal_key", &encode_hex(&fresh))?;
        // One organization per database: the first profile to use it owns it.
        let owner = setting_once(&mut conn, "scope", &url.scope)?;
        if owner != url.scope {
            return Err(StoreError(format!(
                "the state database {} keeps the state of profile {owner:?}, not {:?}: give each organization its own database, \
                 and the runners of one organization the same profile name (or none)",
                url.place(),
                url.scope
            )));
        }
        let key = decode_hex(&stored)
            .filter(|k| k.len() == 32)
            .ok_or_else(|| {
                StoreError(format!(
                    "the journal key in {} is damaged: it must be 64 hex digits",
                    url.place()
                ))
            })?;
        let more = url.clone();
        Ok(Store {
            conn: Shared::pool(
                conn,
                Box::new(move || {
                    Ok(Conn::Pg(Box::new(pg::PgConn::connect(
                        &more,
                        lost.clone(),
                    )?)))
                }),
            ),
            pg: true,
            key,
            dir: None,
            place: url.place(),
            wal: None,
        })
    }

    /// Whether writes can be recorded now: a round trip to a PostgreSQL
    /// server (which may have gone away); nothing to check for SQLite.
    pub fn ready(&self) -> Result<()> {
        // A local file has no connection to lose: no need to queue for it.
        if !self.pg {
            return Ok(());
        }
        match &mut *self.conn.primary() {
            Conn::Pg(c) => c.ping(),
            Conn::Lite(_) => Ok(()),
        }
    }

    /// Whether this store is on a PostgreSQL server.
    pub fn is_postgres(&self) -> bool {
        self.pg
    }

    /// Two first runs at once race to set WAL mode and migrate; SQLite answers
    /// some of those races with an immediate "database is locked" that no busy
    /// handler waits out, so set-up is retried for up to the busy timeout.
    fn prepare_patiently(&self) -> Result<()> {
        let started = std::time::Instant::now();
        loop {
            match self.prepare() {
                Err(e)
                    if e.0.contains("database is locked") && started.elapsed() < BUSY_TIMEOUT =>
                {
                    std::thread::sleep(Duration::from_millis(rand::random_range(10..50)));
                }
                other => return other,
            }
        }
    }

    fn prepare(&self) -> Result<()> {
        let mut guard = self.conn();
        let Conn::Lite(conn::Lite { conn, .. }) = &mut *guard else {
            return Ok(());
        };
        conn.busy_timeout(BUSY_TIMEOUT).map_err(sql)?;
        // WAL lets readers and one writer work at once; NORMAL sync is safe with WAL.
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(sql)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(sql)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(sql)?;
        schema::migrate(conn)
    }

    fn conn(&self) -> conn::ConnGuard<'_> {
        self.conn.lock()
    }

    /// The connection whose session holds this process's locks.
    fn primary(&self) -> conn::ConnGuard<'_> {
        self.conn.primary()
    }

    /// HMAC-SHA256 of a secret under this install's key, hex: a stable id for a
    /// token that reveals nothing of it, even to someone who can read the database.
    pub fn fingerprint(&self, secret: &SecretString) -> String {
        let mut mac =
            hmac::Hmac::<sha2::Sha256>::new_from_slice(&self.key).expect("any key length");
        mac.update(secret.expose().as_bytes());
        encode_hex(&mac.finalize().into_bytes())
    }
}

/// A shared setting: `value` if nobody set it first, else what they set.
fn setting_once(conn: &mut Conn, name: &str, value: &str) -> Result<String> {
    conn.exec(
        &Sql::same(
            "INSERT INTO mdops_settings (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING",
        ),
        &[P::Text(Some(name)), P::Text(Some(value))],
    )?;
    conn.query_opt(
        &Sql::same("SELECT value FROM mdops_settings WHERE name = ?1"),
        &[P::Text(Some(name))],
    )?
    .map(|r| r.text("value"))
    .transpose()
    .map(Option::unwrap_or_default)
}

/// Lowercase hex. (Each fingerprint is encoded at every journal step of
/// its token: a `format!` per byte cost more than the HMAC.)
fn encode_hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[usize::from(b >> 4)] as char);
        s.push(HEX[usize::from(b & 15)] as char);
    }
    s
}

fn sql(e: rusqlite::Error) -> StoreError {
    StoreError(e.to_string())
}

fn describe(path: &Path, e: rusqlite::Error) -> StoreError {
    StoreError(format!(
        "cannot open the state database {}: {e}",
        path.display()
    ))
}

fn create_private_dir(dir: &Path) -> Result<()> {
    crate::lock::private_dir(dir).map_err(|e| {
        StoreError(format!(
            "cannot create the data directory {}: {e}",
            dir.display()
        ))
    })
}

/// The per-install HMAC key: 32 random bytes in `journal.key`, mode 0600,
/// created once (atomically, so two first runs agree on one key).
fn install_key(dir: &Path) -> Result<Vec<u8>> {
    let path = dir.join("journal.key");
    let read = |p: &Path| -> Result<Option<Vec<u8>>> {
        match std::fs::read_to_string(p) {
            Ok(text) => decode_hex(text.trim())
                .filter(|k| k.len() == 32)
                .map(Some)
                .ok_or_else(|| {
                    StoreError(format!(
                        "{} is damaged: it must hold 64 hex digits",
                        p.display()
                    ))
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError(format!("cannot read {}: {e}", p.display()))),
        }
    };
    if let Some(k) = read(&path)? {
        return Ok(k);
    }
    let key: [u8; 32] = rand::random();
    let hex = encode_hex(&key);
    let tmp = tempfile::Builder::new()
        .prefix(".journal.key")
        .permissions(private_mode())
        .tempfile_in(dir)
        .map_err(|e| {
            StoreError(format!(
                "cannot write in the data directory {}: {e}",
                dir.display()
            ))
        })?;
    write_synced(&tmp, &hex)?;
    // persist_noclobber: if another process won the race, use its key.
    match tmp.persist_noclobber(&path) {
        Ok(_) => {
            crate::fsutil::sync_dir(dir);
            Ok(key.to_vec())
        }
        Err(_) => {
            read(&path)?.ok_or_else(|| StoreError(format!("cannot create {}", path.display())))
        }
    }
}

/// Replaces the journal key of a data directory (atomically, synced; 0600).
fn write_key(dir: &Path, hex: &str) -> Result<()> {
    let path = dir.join("journal.key");
    crate::fsutil::write_private(&path, format!("{hex}\n").as_bytes())
        .map_err(|e| StoreError(format!("cannot replace {}: {e}", path.display())))
}

/// The key, on disk before it is renamed into place: a journal whose key
/// was lost cannot recognise a single token it minted.
fn write_synced(tmp: &tempfile::NamedTempFile, hex: &str) -> Result<()> {
    use std::io::Write;
    let mut f = tmp.as_file();
    f.write_all(format!("{hex}\n").as_bytes())
        .and_then(|_| f.sync_all())
        .map_err(|e| StoreError(format!("cannot write {}: {e}", tmp.path().display())))
}

#[cfg(unix)]
fn private_mode() -> std::fs::Permissions {
    use std::os::unix::fs::PermissionsExt;
    std::fs::Permissions::from_mode(0o600)
}

#[cfg(not(unix))]
fn private_mode() -> std::fs::Permissions {
    std::fs::metadata(".").expect("cwd").permissions()
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips() {
        let all: Vec<u8> = (0..=255).collect();
        let hex = encode_hex(&all);
        assert!(hex.starts_with("000102") && hex.ends_with("fdfeff"));
        assert_eq!(
            hex,
            all.iter().map(|b| format!("{b:02x}")).collect::<String>()
        );
        assert_eq!(decode_hex(&hex), Some(all));
    }

    #[test]
    fn key_is_stable_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let a = Store::open(dir.path(), None).unwrap();
        let b = Store::open(dir.path(), None).unwrap();
        let s = SecretString::new("abc");
        assert_eq!(a.fingerprint(&s), b.fingerprint(&s));
        assert_eq!(a.fingerprint(&s).len(), 64);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("journal.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let other = tempfile::tempdir().unwrap();
        let c = Store::open(other.path(), None).unwrap();
        assert_ne!(
            a.fingerprint(&s),
            c.fingerprint(&s),
            "keys differ per install"
        );
    }

    #[test]
    fn corrupt_database_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("state.db"),
            b"this is not sqlite at all, not even close......",
        )
        .unwrap();
        let e = Store::open(dir.path(), None).err().unwrap();
        assert!(e.0.contains("state.db"), "{e}");
        assert!(e.0.contains("not a database"), "{e}");
    }
}
