//! Where a secret goes when a script delivers it: a whole file, one entry of
//! an env file, or a command's standard input. Every write reads back what
//! landed; file writes hold a lock on the directory while they read, change
//! and write, so concurrent workers and processes never lose each other's
//! update. Each returns what the target held before, so a failed rotation
//! can put it back.
//!
//! Knows nothing of scripts or of the run: the runtime decides whether a
//! delivery may happen (dry run, target already used) and records it.

pub mod aws;
mod command;
mod dotenv;
mod env_file;
mod file;
pub mod github;
pub mod http;
pub mod k8s;
pub mod template;
pub mod vault;

pub use crate::fsutil::Wait;
pub use command::to_command;
pub use dotenv::{check_env_name, valid_env_key};
pub use env_file::{check_env_entry, to_env_file};
pub use file::to_file;

use std::path::{Path, PathBuf};

/// The identity of a target, for telling two deliveries to one place apart:
/// the absolute path (symlinks resolved), plus the key for env files.
pub fn target_id(kind: &str, path: &Path, key: Option<&str>) -> String {
    let abs = absolute(path);
    match key {
        Some(k) => format!("{kind}:{}#{k}", abs.display()),
        None => format!("{kind}:{}", abs.display()),
    }
}

/// `path` made absolute with every link resolved, as far as it exists: the
/// deepest existing directory is made canonical and the rest (directories a
/// delivery will create) follows it as written. So a target has one name
/// before its directories are made and after, a sink directory behind a
/// symlink included.
fn absolute(path: &Path) -> PathBuf {
    use std::path::Component;
    let resolved = crate::fsutil::resolve(path);
    let abs = std::path::absolute(&resolved).unwrap_or(resolved);
    let (Some(dir), Some(name)) = (abs.parent(), abs.file_name()) else {
        return abs;
    };
    // Most often the directory exists.
    if let Ok(d) = std::fs::canonicalize(dir) {
        return d.join(name);
    }
    // Else from the deepest directory that exists (one `stat` a level, one
    // canonical walk): below it nothing is a link, so `..` is the directory
    // above (as `mkdir -p` takes it), and once back in existing directories
    // their links are followed again. (The file itself: `resolve` followed it.)
    let parts: Vec<Component> = dir.components().collect();
    let mut k = parts.len();
    while k > 0 && !parts[..k].iter().collect::<PathBuf>().exists() {
        k -= 1;
    }
    let found: PathBuf = parts[..k].iter().collect();
    let mut out = std::fs::canonicalize(&found).unwrap_or(found);
    // The next one is missing (or `found` would reach further).
    let mut exists = false;
    for c in &parts[k..] {
        match c {
            Component::ParentDir => {
                out.pop();
                exists = exists || out.exists();
            }
            Component::CurDir => {}
            other => {
                out.push(other);
                if exists {
                    match std::fs::canonicalize(&out) {
                        Ok(real) => out = real,
                        Err(_) => exists = false,
                    }
                }
            }
        }
    }
    out.join(name)
}

/// A target id recorded earlier, named again as [`target_id`] names it now:
/// an id recorded before its directory existed followed any link in it only
/// as far as it existed then.
pub fn current_id(id: &str) -> String {
    match file_of(id) {
        Some((path, None)) => target_id("file", Path::new(path), None),
        Some((path, key)) => target_id("env-file", Path::new(path), key),
        None => id.to_string(),
    }
}

/// The path (and env key) a file or env-file target id names.
fn file_of(id: &str) -> Option<(&str, Option<&str>)> {
    if let Some(path) = id.strip_prefix("file:") {
        return Some((path, None));
    }
    let (path, key) = id.strip_prefix("env-file:")?.rsplit_once('#')?;
    Some((path, Some(key)))
}

/// What a file or env-file target (by its id) holds now: `None` inside when
/// there is no file or no entry. `None` for a target mdops cannot read back
/// itself (a store, a command) or whose directory is not there (a volume
/// not mounted here says nothing of what the file holds).
pub fn read_back(id: &str) -> Option<Result<Option<String>, String>> {
    let (path, key) = file_of(id)?;
    if !crate::fsutil::parent(Path::new(path)).is_dir() {
        return None;
    }
    let bytes = match crate::fsutil::read_existing(Path::new(path)) {
        Ok(Some(b)) => b,
        other => return Some(other.map(|_| None)),
    };
    Some(match key {
        None => Ok(Some(
            String::from_utf8_lossy(&bytes)
                .trim_end_matches(['\n', '\r'])
                .to_string(),
        )),
        Some(key) => String::from_utf8(bytes)
            .map_err(|_| format!("{path} is not UTF-8 text"))
            .and_then(|text| {
                dotenv::edit(&text, key, "")
                    .map(|(_, value)| value)
                    .map_err(|why| format!("cannot read {path}: {why}"))
            }),
    })
}

/// The directory a file lands in must exist, unless `mkdir` may create it.
fn check_dir(path: &Path, mkdir: bool) -> Result<PathBuf, String> {
    let dir = crate::fsutil::parent(path);
    if dir.is_dir() {
        return Ok(dir);
    }
    if mkdir {
        // The directories that gain an entry: synced once it exists, so the
        // new directory survives a crash as the token file written into it
        // does (the old token may be revoked right after).
        let mut gaining = Vec::new();
        let mut d = dir.as_path();
        while !d.exists() {
            match d.parent() {
                Some(p) if !p.as_os_str().is_empty() => {
                    gaining.push(p.to_path_buf());
                    d = p;
                }
                _ => break,
            }
        }
        crate::lock::private_dir(&dir)
            .map_err(|e| format!("cannot create directory {}: {e}", dir.display()))?;
        for parent in gaining {
            crate::fsutil::sync_dir(&parent);
        }
        return Ok(dir);
    }
    Err(format!(
        "cannot write {}: directory {} does not exist",
        path.display(),
        dir.display()
    ))
}

/// Whether a file could be written at `path` now: its directory exists and is
/// writable, or (with `mkdir`) its nearest existing ancestor is.
/// Whatever is at `path` now may be replaced by a sink: nothing, or a regular
/// file (never a symbolic link, a FIFO or a device).
pub fn check_replaceable(path: &Path) -> Result<(), String> {
    match std::fs::symlink_metadata(path) {
        Err(_) => Ok(()),
        Ok(m) if m.file_type().is_symlink() => Err(format!(
            "{} is a symbolic link: mdops does not write through links (point the sink at the file itself)",
            path.display()
        )),
        Ok(m) if !m.is_file() => Err(format!("{} is not a regular file", path.display())),
        Ok(_) => Ok(()),
    }
}

pub fn check_writable(path: &Path, mkdir: bool) -> Result<(), String> {
    let mut dir = crate::fsutil::parent(path);
    if !dir.is_dir() {
        if !mkdir {
            return Err(format!("directory {} does not exist", dir.display()));
        }
        while !dir.is_dir() {
            if dir.exists() {
                return Err(format!(
                    "{} is in the way: it is not a directory",
                    dir.display()
                ));
            }
            match dir.parent() {
                Some(p) if !p.as_os_str().is_empty() => dir = p.to_path_buf(),
                _ => {
                    dir = PathBuf::from(".");
                    break;
                }
            }
        }
    }
    if !writable(&dir) {
        return Err(format!("directory {} is not writable", dir.display()));
    }
    if let Ok(m) = std::fs::metadata(path) {
        if m.is_dir() {
            return Err(format!("{} is a directory", path.display()));
        }
    }
    Ok(())
}

#[cfg(unix)]
fn writable(dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: access(2) reads a NUL-terminated path we own.
    unsafe { libc::access(c.as_ptr(), libc::W_OK | libc::X_OK) == 0 }
}

#[cfg(not(unix))]
fn writable(dir: &Path) -> bool {
    std::fs::metadata(dir).is_ok_and(|m| !m.permissions().readonly())
}

/// Reads a written file back as it was read before the write: never through
/// a link or from a FIFO someone swapped in after the rename (which would
/// block the run while it holds the directory's lock).
fn verify_readback(path: &Path, expected: &[u8]) -> Result<(), String> {
    let back = crate::fsutil::read_existing(path)
        .map_err(|e| format!("wrote {} but cannot read it back: {e}", path.display()))?
        .ok_or_else(|| format!("wrote {} but it is gone", path.display()))?;
    if back != expected {
        return Err(format!(
            "wrote {} but it reads back differently (another writer outside mdops?)",
            path.display()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{current_id, target_id};

    #[test]
    fn a_target_has_one_name_before_its_directories_exist_and_after() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().canonicalize().unwrap();
        let real = base.join("real");
        std::fs::create_dir(&real).unwrap();
        let link = base.join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let want = format!("file:{}", real.join("acct/app.token").display());
        let through_link = link.join("acct/app.token");
        let before = target_id("file", &through_link, None);
        assert_eq!(before, want);
        std::fs::create_dir(real.join("acct")).unwrap();
        assert_eq!(target_id("file", &through_link, None), want);
        // `..` in what does not exist yet is the directory above.
        let up = link.join("new/deeper/../../acct/app.token");
        assert_eq!(target_id("file", &up, None), want);
        // `..` that climbs out of a missing directory into a link.
        let back = base.join("missing/../link/acct/app.token");
        assert_eq!(target_id("file", &back, None), want);
        std::fs::create_dir(base.join("missing")).unwrap();
        assert_eq!(target_id("file", &back, None), want);
        // An id recorded through the link, before the directory existed.
        let old = format!("file:{}", through_link.display());
        assert_eq!(current_id(&old), want);
        let env = format!("env-file:{}#MD_TOKEN", link.join("acct/.env").display());
        assert_eq!(
            current_id(&env),
            format!("env-file:{}#MD_TOKEN", real.join("acct/.env").display())
        );
        assert_eq!(current_id("command:deliver.sh"), "command:deliver.sh");
    }
}
