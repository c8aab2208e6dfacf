//! Which runs are alive, and one run per script: locks that their holder's
//! end releases, however it ends. With SQLite they are file locks in the data
//! directory; with PostgreSQL, session-level advisory locks on the run's own
//! connection, so runners on different machines see each other.

use super::conn::Conn;
use super::db::{Sql, P};
use super::{pg::lock_key, Result, Store, StoreError};
use std::path::PathBuf;

/// Held while a run lives: it says the run is alive.
pub enum Alive {
    File(std::fs::File),
    /// An advisory lock on the store's connection.
    Pg,
    /// In memory: nobody else can look.
    Nothing,
}

/// A dead run's leftovers, claimed so that two runs never resolve them at once.
pub struct Claim<'a> {
    store: &'a Store,
    held: ClaimHeld,
}

enum ClaimHeld {
    /// The lock file (taken out when the claim ends), and its path.
    File(Option<std::fs::File>, PathBuf),
    Pg(i64),
}

/// Liveness files whose lock this process holds through a claim. A file lock
/// belongs to an open file, not to a process: while one worker's claim holds
/// a dead run's lock, another worker of this process that tried the lock
/// would find it held and take the dead run for a live one. Every try on a
/// liveness file, and every claim's end, happens under this lock.
static CLAIMED: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

fn claimed() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    CLAIMED.lock().unwrap_or_else(|e| e.into_inner())
}

impl Claim<'_> {
    /// The dead run's leftovers are all settled: forget its lock.
    pub fn settled(&self) {
        if let ClaimHeld::File(_, path) = &self.held {
            let _ = std::fs::remove_file(path);
        }
    }
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        match &mut self.held {
            ClaimHeld::Pg(key) => {
                let _ = pg_unlock(&mut self.store.primary(), *key);
            }
            ClaimHeld::File(file, path) => {
                // Unlocked and forgotten in one step (see `CLAIMED`).
                let mut claimed = claimed();
                drop(file.take());
                claimed.retain(|p| p != path);
            }
        }
    }
}

fn pg_try(conn: &mut Conn, key: i64) -> Result<bool> {
    match conn {
        Conn::Pg(c) => c.try_lock(key),
        Conn::Lite(_) => Ok(true),
    }
}

fn pg_unlock(conn: &mut Conn, key: i64) -> Result<()> {
    match conn {
        Conn::Pg(c) => c.unlock(key),
        Conn::Lite(_) => Ok(()),
    }
}

impl Store {
    fn liveness_path(&self, run_id: &str) -> Option<PathBuf> {
        self.dir
            .as_ref()
            .map(|d| d.join("runs").join(format!("{run_id}.lock")))
    }

    /// Marks this process's run alive until the returned value is dropped (or
    /// the process ends).
    pub fn mark_alive(&self, run_id: &str) -> Result<Alive> {
        if self.is_postgres() {
            return if pg_try(&mut self.primary(), lock_key("run", run_id))? {
                Ok(Alive::Pg)
            } else {
                Err(StoreError(format!(
                    "run {run_id} is marked alive by another session"
                )))
            };
        }
        let Some(path) = self.liveness_path(run_id) else {
            return Ok(Alive::Nothing);
        };
        match crate::lock::try_hold(&path).map_err(StoreError)? {
            Some(file) => Ok(Alive::File(file)),
            None => Err(StoreError(format!(
                "{} is held by another process",
                path.display()
            ))),
        }
    }

    /// This process's run is over: nothing of it is left to say.
    pub fn forget_alive(&self, run_id: &str, alive: Alive) {
        match alive {
            Alive::Pg => {
                let _ = pg_unlock(&mut self.primary(), lock_key("run", run_id));
            }
            Alive::File(f) => {
                drop(f);
                if let Some(p) = self.liveness_path(run_id) {
                    let _ = std::fs::remove_file(p);
                }
            }
            Alive::Nothing => {}
        }
    }

    /// Whether another process's run is alive now.
    pub fn is_alive(&self, run_id: &str) -> bool {
        if self.is_postgres() {
            return matches!(self.claim_dead(run_id), Ok(None));
        }
        let Some(path) = self.liveness_path(run_id) else {
            return true;
        };
        let claimed = claimed();
        // Claimed here: dead, and being settled by another worker.
        if claimed.contains(&path) {
            return false;
        }
        matches!(crate::lock::try_hold(&path), Ok(None))
    }

    /// Claims a run's leftovers if the run is dead; `None` while it lives.
    pub fn claim_dead(&self, run_id: &str) -> Result<Option<Claim<'_>>> {
        if self.is_postgres() {
            let key = lock_key("run", run_id);
            // The connection is released before a claim exists: dropping one
            // unlocks through it. (And no claim is made unless the lock was
            // taken: one made and dropped would unlock the live run's lock
            // through a connection that never held it, waiting on the
            // connection this statement still holds.)
            let taken = pg_try(&mut self.primary(), key)?;
            return Ok(taken.then(|| Claim {
                store: self,
                held: ClaimHeld::Pg(key),
            }));
        }
        let Some(path) = self.liveness_path(run_id) else {
            return Ok(None);
        };
        let mut claimed = claimed();
        // Another worker of this process has claimed it: not this one's.
        if claimed.contains(&path) {
            return Ok(None);
        }
        let Some(file) = crate::lock::try_hold(&path).map_err(StoreError)? else {
            return Ok(None);
        };
        claimed.push(path.clone());
        Ok(Some(Claim {
            store: self,
            held: ClaimHeld::File(Some(file), path),
        }))
    }

    /// Takes the one-run-at-a-time lock of a script (PostgreSQL only: a SQLite
    /// store's runs lock a file in the data directory before opening it).
    /// `Err` with the holder's description when another runner has it.
    /// The lock lasts as long as the connection.
    pub fn lock_script(&self, key: &str, script: &str) -> Result<std::result::Result<(), String>> {
        let lock = lock_key("script", key);
        let mut conn = self.primary();
        if !pg_try(&mut conn, lock)? {
            let holder = conn
                .query_opt(
                    &Sql::same("SELECT holder, at FROM run_locks WHERE lock_key = ?1"),
                    &[P::Text(Some(key))],
                )?
                .map(|r| {
                    format!(
                        "{}, since {}",
                        r.text("holder").unwrap_or_default(),
                        r.text("at").unwrap_or_default()
                    )
                })
                .unwrap_or_else(|| "holder unknown".to_string());
            return Ok(Err(holder));
        }
        let holder = format!(
            "pid={} on {}, script={script}",
            std::process::id(),
            host_name().unwrap_or("unknown host")
        );
        conn.exec(
            &Sql::same(
                "INSERT INTO run_locks (lock_key, holder, at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (lock_key) DO UPDATE SET holder = excluded.holder, at = excluded.at",
            ),
            &[
                P::Text(Some(key)),
                P::Text(Some(&holder)),
                P::Text(Some(&super::now())),
            ],
        )?;
        Ok(Ok(()))
    }
}

/// This machine's name, as far as it has one: files and env files named in
/// a shared journal are this machine's only if they were written here.
pub fn host_name() -> Option<&'static str> {
    static NAME: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    NAME.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .or_else(|_| std::fs::read_to_string("/etc/hostname"))
            .ok()
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .or_else(|| std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()))
    })
    .as_deref()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A dead run's lock held by one worker's claim: the other workers of
    /// the process see the run dead (not alive, as the held lock alone would
    /// say), and cannot claim it twice.
    #[test]
    fn a_claim_here_does_not_make_a_dead_run_look_alive() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), None).unwrap();
        let run = "run-dead-1";
        // Its process is gone: its liveness file is there, unlocked.
        let path = store.liveness_path(run).unwrap();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "").unwrap();
        assert!(!store.is_alive(run));
        let claim = store.claim_dead(run).unwrap().expect("dead: claimable");
        std::thread::scope(|s| {
            s.spawn(|| {
                assert!(!store.is_alive(run), "claimed here, so dead");
                assert!(store.claim_dead(run).unwrap().is_none(), "one claim");
            });
        });
        drop(claim);
        assert!(!store.is_alive(run));
        // A run that lives (its lock held by another open file) is alive.
        let live = "run-live-1";
        let held = crate::lock::try_hold(&store.liveness_path(live).unwrap())
            .unwrap()
            .unwrap();
        assert!(store.is_alive(live));
        drop(held);
        assert!(!store.is_alive(live));
    }
}
