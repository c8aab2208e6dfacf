//! A secret as the whole content of a file (and a newline).

use super::{check_dir, verify_readback, Wait};
use crate::api::SecretString;
use std::path::Path;

/// Writes the secret and a newline as the whole content of `path`, under the
/// directory's lock; `mkdir` creates a missing directory (mode 0700). Returns
/// what the file held before (all of it, without its final newline), so that
/// putting it back restores the file as it was. A link or anything but a
/// regular file at `path` is refused, nothing written.
pub fn to_file(
    path: &Path,
    secret: &SecretString,
    mkdir: bool,
    wait: &Wait<'_>,
) -> Result<Option<SecretString>, String> {
    let dir = check_dir(path, mkdir)?;
    let _lock = crate::fsutil::lock_dir(&dir, wait)?;
    let previous = crate::fsutil::read_existing(path)?
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .map(|t| {
            let t = t.strip_suffix('\n').unwrap_or(&t);
            t.strip_suffix('\r').unwrap_or(t).to_string()
        })
        .filter(|t| !t.trim().is_empty())
        .map(SecretString::new);
    let content = format!("{}\n", secret.expose());
    crate::fsutil::replace(path, content.as_bytes())?;
    verify_readback(path, content.as_bytes())?;
    Ok(previous)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn never() -> bool {
        false
    }

    const WAIT: Wait<'static> = Wait {
        cancelled: &never,
        timeout: std::time::Duration::from_secs(5),
    };

    #[test]
    fn needs_an_existing_directory_unless_told_to_make_it() {
        let dir = tempfile::tempdir().unwrap();
        let nope = dir.path().join("nope/token");
        let e = to_file(&nope, &SecretString::new("x"), false, &WAIT).unwrap_err();
        assert!(e.contains("does not exist"), "{e}");
        let p = dir.path().join("acct/app.token");
        let first = to_file(&p, &SecretString::new("first"), true, &WAIT).unwrap();
        assert!(first.is_none());
        let prev = to_file(&p, &SecretString::new("second"), true, &WAIT).unwrap();
        assert_eq!(prev.unwrap().expose(), "first");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(p.parent().unwrap())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
        // The whole former content comes back, so a restore loses nothing.
        std::fs::write(&p, "line one\nline two\n").unwrap();
        let prev = to_file(&p, &SecretString::new("third"), true, &WAIT)
            .unwrap()
            .unwrap();
        to_file(&p, &prev, true, &WAIT).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "line one\nline two\n");
    }

    #[test]
    fn a_link_is_refused_and_its_target_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        std::fs::write(&outside, "keep\n").unwrap();
        let link = dir.path().join("app.token");
        std::os::unix::fs::symlink(&outside, &link).unwrap();
        let e = to_file(&link, &SecretString::new("x"), false, &WAIT).unwrap_err();
        assert!(e.contains("is a symbolic link"), "{e}");
        assert_eq!(std::fs::read_to_string(&outside).unwrap(), "keep\n");
    }
}
