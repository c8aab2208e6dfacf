//! A secret as the whole content of a file (and a newline).

use super::{check_dir, verify_readback};
use crate::api::SecretString;
use std::path::Path;

/// Writes the secret and a newline as the whole content of `path`, under the
/// directory's lock; `mkdir` creates a missing directory (mode 0700). Returns
/// what the file held before (its first line), if anything.
pub fn to_file(
    path: &Path,
    secret: &SecretString,
    mkdir: bool,
) -> Result<Option<SecretString>, String> {
    let dir = check_dir(path, mkdir)?;
    let _lock = crate::fsutil::lock_dir(&dir)?;
    let previous = std::fs::read_to_string(path)
        .ok()
        .and_then(|t| t.lines().next().map(str::trim).map(String::from))
        .filter(|t| !t.is_empty())
        .map(SecretString::new);
    let content = format!("{}\n", secret.expose());
    crate::fsutil::replace(path, content.as_bytes())?;
    verify_readback(path, content.as_bytes())?;
    Ok(previous)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needs_an_existing_directory_unless_told_to_make_it() {
        let dir = tempfile::tempdir().unwrap();
        let e = to_file(
            &dir.path().join("nope/token"),
            &SecretString::new("x"),
            false,
        )
        .unwrap_err();
        assert!(e.contains("does not exist"), "{e}");
        let p = dir.path().join("acct/app.token");
        assert!(to_file(&p, &SecretString::new("first"), true)
            .unwrap()
            .is_none());
        let prev = to_file(&p, &SecretString::new("second"), true).unwrap();
        assert_eq!(prev.unwrap().expose(), "first");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(p.parent().unwrap())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
    }
}
