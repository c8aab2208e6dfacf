//! Files written whole: a temporary file in the same directory, synced, then
//! renamed into place, so readers see the old content or the new, never half.
//!
//! mdops's own files are created 0600. A file that already exists (an
//! operator's env file, say) keeps its owner, group and mode: a root cron run
//! must not leave the app's own env file unreadable to the app.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Writes a file only mdops reads (mode 0600), atomically.
pub fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let dir = parent(path);
    let mut tmp = tempfile::Builder::new()
        .prefix(".mdops-")
        .permissions(private())
        .tempfile_in(&dir)?;
    tmp.write_all(data)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    sync_dir(&dir);
    Ok(())
}

/// The directory `path` is in (`.` for a bare name).
pub fn parent(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The rename is durable only once the directory is synced. A directory that
/// can be written but not read cannot be opened to sync; the file is still in
/// place and verified, so that is not a failure of the write.
pub fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Err(e) = std::fs::File::open(dir).and_then(|d| d.sync_all()) {
        tracing::debug!(dir = %dir.display(), error = %e, "could not sync the directory after a rename");
    }
}

/// Where a write to `path` really lands: a symlink is followed (the link stays
/// a link and its target gets the new content).
pub fn resolve(path: &Path) -> PathBuf {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
        }
        _ => path.to_path_buf(),
    }
}

/// What a file holds now, read without following a symlink and without
/// blocking on something that is not a regular file (a FIFO would wait for a
/// writer forever). `None` when there is no file.
pub fn read_existing(path: &Path) -> Result<Option<Vec<u8>>, String> {
    use std::io::Read;
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    }
    let mut file = match options.open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        #[cfg(unix)]
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(format!(
                "{} is a symbolic link: mdops does not write through links (point the sink at the file itself)",
                path.display()
            ))
        }
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!("{} is not a regular file", path.display()));
    }
    let mut buf = Vec::new();
    (&mut file)
        .take(16 << 20)
        .read_to_end(&mut buf)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Ok(Some(buf))
}

/// Replaces the content of `path` atomically. A new file gets mode 0600; an
/// existing one keeps its owner, group and mode (or the write is refused, with
/// nothing changed, if they cannot be kept). A symbolic link is never written
/// through (the caller has refused one when it read the file).
pub fn replace(path: &Path, data: &[u8]) -> Result<(), String> {
    let dir = parent(path);
    let existing = std::fs::symlink_metadata(path)
        .ok()
        .filter(|m| m.file_type().is_file());
    #[cfg(unix)]
    if let Some((uid, open)) = existing.as_ref().and_then(|m| planted(path, m)) {
        return Err(format!(
            "refusing to write {}: it belongs to another user (uid {uid}) and {} can be written by every user, so anyone could have put it there to read what goes in it; remove it, or write where only trusted users can",
            path.display(),
            open.display()
        ));
    }
    let mut tmp = tempfile::Builder::new()
        .prefix(".mdops-")
        .permissions(private())
        .tempfile_in(&dir)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    tmp.write_all(data)
        .and_then(|_| tmp.as_file().sync_all())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    #[cfg(unix)]
    if let Some(meta) = &existing {
        keep_owner_and_mode(tmp.as_file(), meta).map_err(|e| {
            format!(
                "cannot replace {}: {e} (it was left as it was)",
                path.display()
            )
        })?;
    }
    tmp.persist(path)
        .map_err(|e| format!("cannot write {}: {}", path.display(), e.error))?;
    sync_dir(&dir);
    Ok(())
}

/// An existing file someone may have put where mdops writes, to read what
/// goes in it: it belongs to another user, and below the deepest directory
/// above it that every user can write (`/tmp`, a shared drop directory), the
/// first entry on its way (the file, a directory it is in, or a link on the
/// way) belongs to neither this user nor root, so anybody could have made
/// it. Its owner would be kept (see [`replace`]), and the secret would be
/// theirs. An entry of root's or this user's there, and anything a trusted
/// owner keeps below it, strangers cannot have made. Both the path as
/// written (links as entries) and the path it resolves to are looked at.
/// Returns the file's owner and that directory.
#[cfg(unix)]
fn planted(path: &Path, meta: &std::fs::Metadata) -> Option<(u32, PathBuf)> {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: a plain getter with no arguments.
    let me = unsafe { libc::geteuid() };
    if meta.uid() == me {
        return None;
    }
    let name = path.file_name()?;
    let written = std::path::absolute(parent(path)).ok()?;
    let real = std::fs::canonicalize(&written).ok()?;
    [written, real].into_iter().find_map(|dir| {
        let open = dir
            .ancestors()
            .find(|d| std::fs::metadata(d).is_ok_and(|m| m.mode() & 0o002 != 0))?;
        let first = match dir.strip_prefix(open).ok()?.components().next() {
            Some(c) => open.join(c),
            None => open.join(name),
        };
        let owner = std::fs::symlink_metadata(&first).ok()?.uid();
        (owner != me && owner != 0).then(|| (meta.uid(), open.to_path_buf()))
    })
}

#[cfg(unix)]
fn keep_owner_and_mode(file: &std::fs::File, meta: &std::fs::Metadata) -> Result<(), String> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    use std::os::unix::io::AsRawFd;
    let (uid, gid) = (meta.uid(), meta.gid());
    // SAFETY: fchown on a descriptor we own; no memory is shared.
    let rc = unsafe { libc::fchown(file.as_raw_fd(), uid, gid) };
    if rc != 0 {
        let err = std::io::Error::last_os_error();
        // SAFETY: plain getters with no arguments.
        let (me, my_gid) = unsafe { (libc::geteuid(), libc::getegid()) };
        if uid != me || gid != my_gid {
            return Err(format!(
                "its owner {uid}:{gid} cannot be kept ({err}); run as that user or as root"
            ));
        }
    }
    file.set_permissions(std::fs::Permissions::from_mode(meta.mode() & 0o7777))
        .map_err(|e| format!("its mode cannot be kept ({e})"))
}

/// Holds an advisory lock on a directory while a file in it is read,
/// changed and written back: other mdops workers and processes that write
/// there wait their turn.
pub struct DirLock {
    _file: std::fs::File,
}

/// How long to wait for something outside mdops, and when to give up early.
pub struct Wait<'a> {
    /// True when the run was interrupted (Ctrl-C, SIGTERM).
    pub cancelled: &'a (dyn Fn() -> bool + Sync),
    pub timeout: std::time::Duration,
}

/// Takes the directory's lock, waiting at most `wait.timeout` and never past
/// an interruption (another process may hold it and never let go).
pub fn lock_dir(dir: &Path, wait: &Wait<'_>) -> Result<DirLock, String> {
    let file = std::fs::File::open(dir)
        .map_err(|e| format!("cannot lock {} for writing: {e}", dir.display()))?;
    let started = std::time::Instant::now();
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(DirLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => {}
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(format!("cannot lock {} for writing: {e}", dir.display()))
            }
        }
        if (wait.cancelled)() {
            return Err(format!(
                "interrupted while waiting to write in {}",
                dir.display()
            ));
        }
        if started.elapsed() >= wait.timeout {
            return Err(format!(
                "{} stayed locked by another writer for {}s; nothing was written",
                dir.display(),
                wait.timeout.as_secs()
            ));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[cfg(unix)]
fn private() -> std::fs::Permissions {
    use std::os::unix::fs::PermissionsExt;
    std::fs::Permissions::from_mode(0o600)
}

#[cfg(not(unix))]
fn private() -> std::fs::Permissions {
    std::fs::metadata(".")
        .map(|m| m.permissions())
        .expect("cwd readable")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    #[test]
    fn new_files_are_private_and_existing_ones_keep_their_mode() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x");
        replace(&p, b"one").unwrap();
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
        replace(&p, b"two").unwrap();
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o640
        );
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
    }

    /// Another user's file where every user can write is not written into
    /// (its owner would be kept, and the secret theirs); where only trusted
    /// users can write, another user's file keeps its owner (an app's env
    /// file, rotated by root's cron).
    #[test]
    fn another_users_file_where_everyone_can_write_is_refused() {
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("SKIPPED another_users_file_where_everyone_can_write_is_refused: making a file another user's needs root");
            return;
        }
        let chown = |p: &Path| {
            let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
            // SAFETY: chown on a NUL-terminated path we own.
            assert_eq!(unsafe { libc::chown(c.as_ptr(), 65534, 65534) }, 0);
        };
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let drop = dir.path().join("drop");
        std::fs::create_dir(&drop).unwrap();
        std::fs::set_permissions(&drop, std::fs::Permissions::from_mode(0o1777)).unwrap();
        let planted = drop.join("acct").join("app.token");
        std::fs::create_dir(planted.parent().unwrap()).unwrap();
        chown(planted.parent().unwrap());
        std::fs::write(&planted, "").unwrap();
        chown(&planted);
        let e = replace(&planted, b"secret").unwrap_err();
        assert!(e.contains("belongs to another user (uid 65534)"), "{e}");
        assert!(
            e.contains(&format!("{} can be written by every user", drop.display())),
            "{e}"
        );
        assert_eq!(std::fs::read(&planted).unwrap(), b"", "nothing written");
        let direct = drop.join("direct.token");
        std::fs::write(&direct, "").unwrap();
        chown(&direct);
        assert!(replace(&direct, b"secret").is_err());
        // Through a stranger's link in the drop directory, to a directory of
        // theirs below a directory of root's.
        let theirs = dir.path().join("home").join("acct");
        std::fs::create_dir_all(&theirs).unwrap();
        chown(&theirs);
        let file = theirs.join("app.token");
        std::fs::write(&file, "").unwrap();
        chown(&file);
        let link = drop.join("linked");
        std::os::unix::fs::symlink(&theirs, &link).unwrap();
        let c = std::ffi::CString::new(link.to_str().unwrap()).unwrap();
        // SAFETY: lchown on a NUL-terminated path we own.
        assert_eq!(unsafe { libc::lchown(c.as_ptr(), 65534, 65534) }, 0);
        let e = replace(&link.join("app.token"), b"secret").unwrap_err();
        assert!(e.contains("belongs to another user"), "{e}");
        assert_eq!(std::fs::read(&file).unwrap(), b"", "nothing written");
        let app = dir.path().join("app.env");
        std::fs::write(&app, "A=1\n").unwrap();
        chown(&app);
        replace(&app, b"A=2\n").unwrap();
        assert_eq!(std::fs::metadata(&app).unwrap().uid(), 65534);
    }

    #[test]
    fn links_and_fifos_are_refused_and_a_held_lock_is_not_waited_for_ever() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        std::fs::write(&real, "old").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        assert!(read_existing(&link)
            .unwrap_err()
            .contains("is a symbolic link"));
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo reads a NUL-terminated path we own.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert!(read_existing(&fifo)
            .unwrap_err()
            .contains("not a regular file"));
        let never = || false;
        let wait = Wait {
            cancelled: &never,
            timeout: std::time::Duration::from_millis(100),
        };
        let held = lock_dir(dir.path(), &wait).unwrap();
        let e = lock_dir(dir.path(), &wait).err().unwrap();
        assert!(e.contains("stayed locked by another writer"), "{e}");
        drop(held);
        assert!(lock_dir(dir.path(), &wait).is_ok());
    }
}
