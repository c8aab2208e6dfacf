//! The points where the journal must survive a power loss, not only the
//! process: a token create's attempt, before its request is sent, and a
//! delivery's announcement, before the sink is written.
//!
//! The SQLite state runs in WAL mode with `synchronous=NORMAL`: a commit is
//! safe from a crash of mdops (it is in the operating system's cache) but only
//! reaches the disk at the next checkpoint. SQLite's `synchronous=FULL` is
//! "an additional sync of the WAL file after each transaction commit"; this
//! does that sync, for the commits that come before a write to the outside,
//! and outside the connection's lock, so the other workers' statements go on
//! while the disk flushes (and the kernel folds their syncs together). The
//! WAL is sequential: one sync makes every earlier commit durable with it.
//! PostgreSQL commits durably by itself.

use super::{Result, StoreError};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// The write-ahead log of a SQLite state file.
pub struct Wal {
    path: PathBuf,
    dir: PathBuf,
    /// The WAL's own directory entry is durable only once the directory is
    /// synced (SQLite syncs it on the WAL's first sync, which `NORMAL` defers
    /// to the first checkpoint).
    dir_synced: AtomicBool,
    /// How many syncs were made (tests check where they happen).
    syncs: AtomicUsize,
}

impl Wal {
    pub fn of(db: &Path) -> Wal {
        let mut name = db.as_os_str().to_owned();
        name.push("-wal");
        let dir = match db.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        Wal {
            path: PathBuf::from(name),
            dir,
            dir_synced: AtomicBool::new(false),
            syncs: AtomicUsize::new(0),
        }
    }

    /// Flushes every commit made so far to the disk. No WAL file means
    /// nothing waits in one: a checkpoint moved it into the database file
    /// and synced that.
    pub fn sync(&self) -> Result<()> {
        let file = match std::fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(self.failed(e)),
        };
        file.sync_data().map_err(|e| self.failed(e))?;
        if !self.dir_synced.load(Ordering::Acquire) {
            std::fs::File::open(&self.dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| self.failed(e))?;
            self.dir_synced.store(true, Ordering::Release);
        }
        self.syncs.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn failed(&self, e: std::io::Error) -> StoreError {
        StoreError(format!(
            "cannot flush the state's journal to disk ({}): {e}",
            self.path.display()
        ))
    }

    #[cfg(test)]
    pub fn syncs(&self) -> usize {
        self.syncs.load(Ordering::Relaxed)
    }
}

impl super::Store {
    /// Makes every commit so far survive a power loss (see the module).
    pub(super) fn durable(&self) -> Result<()> {
        match &self.wal {
            Some(w) => w.sync(),
            None => Ok(()),
        }
    }

    #[cfg(test)]
    pub(super) fn wal_syncs(&self) -> usize {
        self.wal.as_ref().map_or(0, |w| w.syncs())
    }
}

#[cfg(test)]
mod tests {
    use super::super::Store;

    #[test]
    fn writes_to_the_outside_wait_for_the_disk() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path(), None).unwrap();
        s.run_begin("r1", 1, "x.rhai").unwrap();
        assert_eq!(s.wal_syncs(), 0, "a run's record alone need not be synced");
        // Before a create is sent.
        s.attempt_begin("r1", "tenant_a", "app.g1").unwrap();
        assert_eq!(s.wal_syncs(), 1);
        let token: crate::api::Token = serde_json::from_value(serde_json::json!({
            "id": "t-1", "name": "app.g1", "created_ts": "2026-01-01T00:00:00Z",
            "read_only": false, "token_type": "read_write"
        }))
        .unwrap();
        let fp = s.fingerprint(&crate::api::SecretString::new("secret-value-1"));
        s.journal_minted("r1", None, "tenant_a", &token, &fp, None)
            .unwrap();
        assert_eq!(
            s.wal_syncs(),
            1,
            "a mint is journaled before anything leaves"
        );
        // Before a sink is written.
        s.journal_delivering(&fp).unwrap();
        assert_eq!(s.wal_syncs(), 2);
        assert!(s.journal_verified(&fp).unwrap());
        assert_eq!(s.wal_syncs(), 2);
        assert!(dir.path().join("state.db-wal").exists());
    }

    #[test]
    fn a_state_without_a_wal_file_has_nothing_to_flush() {
        let s = Store::in_memory().unwrap();
        s.attempt_begin("r1", "tenant_a", "app.g1").unwrap();
        assert_eq!(s.wal_syncs(), 0);
        let w = super::Wal::of(std::path::Path::new("/nonexistent-dir/state.db"));
        w.sync().unwrap();
    }
}
