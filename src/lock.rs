//! One run at a time per script: an advisory lock on a file in the data dir.
//!
//! The operating system releases the lock when its holder exits, however it
//! exits, so a lock left by a dead process is simply taken over.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

pub struct RunLock {
    // Held for as long as this value lives.
    _file: File,
    pub path: PathBuf,
}

#[derive(Debug)]
pub enum LockError {
    /// Another live run holds it; what it wrote about itself.
    Held {
        path: PathBuf,
        holder: String,
    },
    Io(String),
}

/// The lock file's name for a script: its bundled name, or the file name of
/// its canonical path plus a hash of that path. Two `sync.rhai` in different
/// folders do not collide, and a symlink to a script shares the script's lock.
pub fn key_for(script: &str, bundled: bool) -> String {
    if bundled {
        return script.trim_end_matches(".rhai").to_string();
    }
    let path = Path::new(script);
    let full = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    named(&full, full.to_string_lossy().as_bytes(), 4)
}

/// `STEM-HASH`: the file's stem (made safe for a file name) and the first
/// `bytes` bytes of the SHA-256 of `identity`, in hex.
fn named(path: &Path, identity: &[u8], bytes: usize) -> String {
    let stem = path
        .file_stem()
        .map(|s| {
            s.to_string_lossy().replace(
                |c: char| !c.is_ascii_alphanumeric() && c != '-' && c != '_',
                "_",
            )
        })
        .unwrap_or_else(|| "script".into());
    let digest = <sha2::Sha256 as sha2::Digest>::digest(identity);
    let short: String = digest[..bytes].iter().map(|b| format!("{b:02x}")).collect();
    format!("{stem}-{short}")
}

/// The lock name of a script by its file name and content: the same script
/// is one lock wherever a runner keeps it.
pub fn key_for_content(script: &str, text: &str) -> String {
    named(Path::new(script), text.as_bytes(), 6)
}

/// Creates `dir` (and missing parents) with mode 0700.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Opens (creating with mode 0600 in a 0700 directory, never through a
/// symlink) a lock file.
fn open_lock_file(path: &Path) -> Result<File, String> {
    if let Some(dir) = path.parent() {
        private_dir(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600).custom_flags(libc::O_NOFOLLOW);
    }
    options
        .open(path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))
}

/// Takes the lock on `path` if nobody holds it: `Some(file)` holds it until
/// dropped, `None` means another live process has it.
pub fn try_hold(path: &Path) -> Result<Option<File>, String> {
    let file = open_lock_file(path)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(TryLockError::WouldBlock) => Ok(None),
        Err(TryLockError::Error(e)) => Err(format!("cannot lock {}: {e}", path.display())),
    }
}

pub fn acquire(data_dir: &Path, key: &str, script: &str) -> Result<RunLock, LockError> {
    let dir = data_dir.join("locks");
    let path = dir.join(format!("{key}.lock"));
    let mut file = open_lock_file(&path).map_err(LockError::Io)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            return Err(LockError::Held {
                path,
                holder: holder.trim().replace('\n', ", "),
            });
        }
        Err(TryLockError::Error(e)) => {
            return Err(LockError::Io(format!(
                "cannot lock {}: {e}",
                path.display()
            )))
        }
    }
    let mut previous = String::new();
    let _ = file.read_to_string(&mut previous);
    if !previous.trim().is_empty() {
        tracing::debug!(lock = %path.display(), previous = %previous.trim(), "took over a lock its holder left behind");
    }
    let me = format!(
        "pid={}\nstarted={}\nscript={script}\n",
        std::process::id(),
        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    let _ = file.set_len(0);
    let _ = file.seek(SeekFrom::Start(0));
    let _ = file.write_all(me.as_bytes());
    let _ = file.flush();
    Ok(RunLock { _file: file, path })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_then_released() {
        let dir = tempfile::tempdir().unwrap();
        let first = acquire(dir.path(), "job", "job.rhai").unwrap();
        match acquire(dir.path(), "job", "job.rhai") {
            Err(LockError::Held { holder, .. }) => {
                assert!(holder.contains(&format!("pid={}", std::process::id())))
            }
            _ => panic!("the second acquire must fail"),
        }
        drop(first);
        assert!(acquire(dir.path(), "job", "job.rhai").is_ok());
    }

    #[test]
    fn keys() {
        assert_eq!(key_for("rotate-tokens", true), "rotate-tokens");
        let k = key_for("/tmp/some dir/sync.rhai", false);
        assert!(
            k.starts_with("sync-") && k.len() == "sync-".len() + 8,
            "{k}"
        );
    }
}
