//! The points where the journal must survive a power loss, not only the
//! process: a token create's attempt, before its request is sent; a
//! delivery's announcement, before the sink is written; a reveal, before the
//! value is handed to the script.
//!
//! The SQLite state runs in WAL mode with `synchronous=NORMAL`: a commit is
//! safe from a crash of mdops (it is in the operating system's cache) but only
//! reaches the disk at the next checkpoint. SQLite's `synchronous=FULL` is
//! "an additional sync of the WAL file after each transaction commit"; this
//! does that sync, for the commits that come before a write to the outside,
//! and outside the connection's lock, so the other workers' statements go on
//! while the disk flushes. The WAL is sequential: one sync makes every
//! earlier commit durable with it, so the workers of a run share their syncs
//! (group commit): one whose commit is done while another's sync runs waits
//! for the next sync, which the first of them to get there makes for all.
//! PostgreSQL commits durably by itself.

use super::{Result, StoreError};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};

/// Group commit: callers whose commits are done share the syncs that
/// make them durable. A call returns once a sync that started after it did
/// has finished; while one runs, the callers that arrive wait, and the first
/// of them to get there makes the next sync for all. A sync that fails fails
/// every sync after it too: after a write-back error the kernel may drop the
/// pages it could not write, and a later sync succeeds without them.
#[derive(Default)]
pub struct Group {
    rounds: Mutex<Rounds>,
    finished: Condvar,
}

#[derive(Default)]
struct Rounds {
    started: u64,
    done: u64,
    running: bool,
    waiting: usize,
    failed: Option<String>,
}

impl Group {
    /// Waits for (or makes) a `sync` that starts after this call did.
    pub fn after(
        &self,
        sync: impl FnOnce() -> std::io::Result<()>,
    ) -> std::result::Result<(), String> {
        let lock = || self.rounds.lock().unwrap_or_else(|e| e.into_inner());
        let mut r = lock();
        let need = r.started + 1;
        let mut sync = Some(sync);
        loop {
            if let Some(e) = &r.failed {
                return Err(e.clone());
            }
            if r.done >= need {
                return Ok(());
            }
            if r.running {
                r.waiting += 1;
                r = self.finished.wait(r).unwrap_or_else(|e| e.into_inner());
                r.waiting -= 1;
                continue;
            }
            r.running = true;
            r.started += 1;
            let round = r.started;
            drop(r);
            // Only the caller that makes a sync gets here, and then leaves.
            let result = sync.take().map_or(Ok(()), |f| f());
            r = lock();
            r.running = false;
            r.done = round;
            if let Err(e) = result {
                r.failed = Some(e.to_string());
            }
            self.finished.notify_all();
        }
    }

    #[cfg(test)]
    fn waiting(&self) -> usize {
        self.rounds.lock().unwrap().waiting
    }
}

/// The write-ahead log of a SQLite state file.
pub struct Wal {
    path: PathBuf,
    dir: PathBuf,
    /// Kept open from the start: a write-back error is reported to the
    /// descriptors open when it happened, not to one opened later.
    file: OnceLock<std::fs::File>,
    /// The WAL's own directory entry is durable only once the directory is
    /// synced (SQLite syncs it on the WAL's first sync, which `NORMAL` defers
    /// to the first checkpoint).
    dir_synced: AtomicBool,
    group: Group,
    /// How many syncs were made (tests check where they happen).
    syncs: AtomicUsize,
}

impl Wal {
    /// The WAL of the database at `db`, if the connection `c` keeps one. A
    /// database reached through a symlink has its WAL beside the real file,
    /// where SQLite puts it.
    pub fn of(c: &mut super::conn::Conn, db: &Path) -> Result<Option<Wal>> {
        let mode = c
            .query_opt(&super::db::Sql::same("PRAGMA journal_mode"), &[])?
            .map(|r| r.text("journal_mode"))
            .transpose()?
            .unwrap_or_default();
        if !mode.eq_ignore_ascii_case("wal") {
            // A rollback journal with NORMAL syncs at each commit.
            return Ok(None);
        }
        let real = std::fs::canonicalize(db).unwrap_or_else(|_| db.to_path_buf());
        let mut name = real.as_os_str().to_owned();
        name.push("-wal");
        let wal = Wal {
            path: PathBuf::from(name),
            dir: crate::fsutil::parent(&real),
            file: OnceLock::new(),
            dir_synced: AtomicBool::new(false),
            group: Group::default(),
            syncs: AtomicUsize::new(0),
        };
        wal.file()?;
        Ok(Some(wal))
    }

    fn file(&self) -> Result<Option<&std::fs::File>> {
        if let Some(f) = self.file.get() {
            return Ok(Some(f));
        }
        match std::fs::File::open(&self.path) {
            Ok(f) => Ok(Some(self.file.get_or_init(|| f))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.failed(e)),
        }
    }

    /// Flushes every commit made so far to the disk, sharing the sync with
    /// the other workers' (see [`Group`]). No
    /// WAL file means nothing waits in one: a checkpoint moved it into the
    /// database file and synced that.
    pub fn sync(&self) -> Result<()> {
        let Some(file) = self.file()? else {
            return Ok(());
        };
        self.group
            .after(|| {
                self.syncs.fetch_add(1, Ordering::Relaxed);
                file.sync_data()?;
                if !self.dir_synced.swap(true, Ordering::AcqRel) {
                    // As SQLite does: a directory that cannot be synced is no
                    // reason to refuse the write.
                    crate::fsutil::sync_dir(&self.dir);
                }
                Ok(())
            })
            .map_err(|e| self.failed(e))
    }

    fn failed(&self, e: impl std::fmt::Display) -> StoreError {
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

    /// Journals token t-1 as minted; returns its fingerprint.
    fn minted(s: &Store) -> String {
        let token: crate::api::Token = serde_json::from_value(serde_json::json!({
            "id": "t-1", "name": "app.g1", "created_ts": "2026-01-01T00:00:00Z",
            "read_only": false, "token_type": "read_write"
        }))
        .unwrap();
        let fp = s.fingerprint(&crate::api::SecretString::new("secret-value-1"));
        s.journal_minted("r1", None, "tenant_a", &token, &fp, None)
            .unwrap();
        fp
    }

    #[test]
    fn writes_to_the_outside_wait_for_the_disk() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path(), None).unwrap();
        s.run_begin("r1", 1, "x.rhai", &Default::default()).unwrap();
        assert_eq!(s.wal_syncs(), 0, "a run's record alone need not be synced");
        // Before a create is sent.
        s.attempt_begin("r1", "tenant_a", "app.g1").unwrap();
        assert_eq!(s.wal_syncs(), 1);
        let fp = minted(&s);
        assert_eq!(
            s.wal_syncs(),
            1,
            "a mint is journaled before anything leaves"
        );
        // Before a sink is written.
        s.journal_delivering(&fp, "file:/x", "r1", None).unwrap();
        assert_eq!(s.wal_syncs(), 2);
        assert!(s.journal_verified(&fp).unwrap());
        assert_eq!(s.wal_syncs(), 2);
        assert!(dir.path().join("state.db-wal").exists());
    }

    /// SQLite keeps the WAL beside the real file: that is the one to sync.
    #[test]
    fn a_state_file_behind_a_symlink_is_synced_where_it_lives() {
        let tmp = tempfile::tempdir().unwrap();
        let (state, vol) = (tmp.path().join("state"), tmp.path().join("vol"));
        std::fs::create_dir(&state).unwrap();
        std::fs::create_dir(&vol).unwrap();
        std::os::unix::fs::symlink(vol.join("mdops.db"), state.join("state.db")).unwrap();
        std::fs::write(vol.join("mdops.db"), b"").unwrap();
        let s = Store::open(&state, None).unwrap();
        s.run_begin("r1", 1, "x.rhai", &Default::default()).unwrap();
        s.attempt_begin("r1", "tenant_a", "app.g1").unwrap();
        assert!(vol.join("mdops.db-wal").exists());
        assert_eq!(s.wal_syncs(), 1, "the attempt was not flushed");
    }

    /// A revealed value leaves the journal's sight: what the journal knows of
    /// it must be on disk first.
    #[test]
    fn a_reveal_is_on_disk_before_the_value_is_handed_over() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path(), None).unwrap();
        minted(&s);
        let before = s.wal_syncs();
        s.journal_revealed("t-1").unwrap();
        assert_eq!(s.wal_syncs(), before + 1);
    }

    /// Callers that arrive while a sync runs share the next one; a sync
    /// that fails fails them, and every sync after it.
    #[test]
    fn syncs_are_shared_and_a_failure_sticks() {
        use super::Group;
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::{mpsc, Arc};
        let g = Arc::new(Group::default());
        let made = Arc::new(AtomicUsize::new(0));
        let count = |made: &Arc<AtomicUsize>| {
            let made = made.clone();
            move || {
                made.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
        };
        // Nothing overlaps: each caller makes its own.
        for _ in 0..3 {
            g.after(count(&made)).unwrap();
        }
        assert_eq!(made.load(Ordering::SeqCst), 3);
        // One sync is held; four callers arrive meanwhile and wait.
        let (release, held) = mpsc::channel::<()>();
        let (started, running) = mpsc::channel::<()>();
        let first = {
            let (g, made) = (g.clone(), made.clone());
            std::thread::spawn(move || {
                g.after(|| {
                    made.fetch_add(1, Ordering::SeqCst);
                    started.send(()).unwrap();
                    held.recv().unwrap();
                    Ok(())
                })
            })
        };
        running.recv().unwrap();
        let waiters: Vec<_> = (0..4)
            .map(|_| {
                let (g, sync) = (g.clone(), count(&made));
                std::thread::spawn(move || g.after(sync))
            })
            .collect();
        while g.waiting() < 4 {
            std::thread::yield_now();
        }
        release.send(()).unwrap();
        first.join().unwrap().unwrap();
        for w in waiters {
            w.join().unwrap().unwrap();
        }
        assert_eq!(made.load(Ordering::SeqCst), 5, "the four shared one sync");
        // A failed sync fails its caller and every caller after it.
        let e = g.after(|| Err(std::io::Error::other("EIO"))).unwrap_err();
        assert_eq!(e, "EIO");
        assert_eq!(g.after(count(&made)).unwrap_err(), "EIO");
        assert_eq!(made.load(Ordering::SeqCst), 5, "nothing synced after it");
    }

    #[test]
    fn a_state_without_a_wal_file_has_nothing_to_flush() {
        let s = Store::in_memory().unwrap();
        s.attempt_begin("r1", "tenant_a", "app.g1").unwrap();
        assert_eq!(s.wal_syncs(), 0);
    }
}
