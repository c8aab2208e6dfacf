//! One `KEY=value` entry of an env file, set in place.
//!
//! The file keeps its shape: every other line byte for byte; the replaced
//! entry keeps its indentation, its `export ` prefix and its line ending
//! (CRLF stays CRLF); a quoted value that spans lines is replaced whole;
//! later entries for the same key (which would override it) are removed.

use super::dotenv::{edit, valid_env_key};
use super::{check_dir, verify_readback, Wait};
use crate::api::SecretString;
use std::path::Path;

/// Sets `KEY=value` in an env file under the directory's lock (read, change,
/// write, read back), keeping the file's shape, owner and mode (a new file is
/// 0600). Returns the value KEY had before, if any.
pub fn to_env_file(
    path: &Path,
    key: &str,
    secret: &SecretString,
    wait: &Wait<'_>,
) -> Result<Option<SecretString>, String> {
    if !valid_env_key(key) {
        return Err(format!(
            "invalid env key {key:?}: use letters, digits and _, not starting with a digit"
        ));
    }
    let value = secret.expose();
    if value.contains(['\n', '\r', '\0']) {
        return Err("the secret contains a line break and cannot go in an env file".into());
    }
    let dir = check_dir(path, false)?;
    let _lock = crate::fsutil::lock_dir(&dir, wait)?;
    let existing = match crate::fsutil::read_existing(path)? {
        Some(bytes) => String::from_utf8(bytes).map_err(|_| {
            format!(
                "{} is not UTF-8 text; it was left as it was",
                path.display()
            )
        })?,
        None => String::new(),
    };
    let (content, previous) = edit(&existing, key, value).map_err(|why| {
        format!(
            "cannot edit {} safely: {why} (the file was left as it was)",
            path.display()
        )
    })?;
    crate::fsutil::replace(path, content.as_bytes())?;
    verify_readback(path, content.as_bytes())?;
    Ok(previous.filter(|p| !p.is_empty()).map(SecretString::new))
}

/// Whether `key` of the env file at `path` could be set now: the file (if
/// any) is a readable regular text file that `edit` would change safely. For
/// checking a target before anything is minted.
pub fn check_env_entry(path: &Path, key: &str) -> Result<(), String> {
    let Some(bytes) = crate::fsutil::read_existing(path)? else {
        return Ok(());
    };
    let text =
        String::from_utf8(bytes).map_err(|_| format!("{} is not UTF-8 text", path.display()))?;
    edit(&text, key, "placeholder")
        .map(|_| ())
        .map_err(|why| format!("cannot edit {} safely: {why}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::super::dotenv::unquote;
    use super::*;

    #[test]
    fn replaces_one_entry_and_keeps_every_other_byte() {
        let before = "# app\r\nA=1\r\nexport MD_TOKEN=old\r\nB='two words'\r\nC=3";
        let (after, prev) = edit(before, "MD_TOKEN", "new.value").unwrap();
        assert_eq!(prev.as_deref(), Some("old"));
        assert_eq!(
            after,
            "# app\r\nA=1\r\nexport MD_TOKEN=new.value\r\nB='two words'\r\nC=3"
        );
    }

    /// Which of two entries does the workload read, and which would a failed
    /// rotation put back? Neither is safe to guess: refused.
    #[test]
    fn a_key_set_twice_is_refused() {
        let before = "MD_TOKEN=stale\nOTHER=1\nMD_TOKEN=live\n";
        let e = edit(before, "MD_TOKEN", "new").unwrap_err();
        assert_eq!(
            e,
            "MD_TOKEN is set 2 times (lines 1, 3); a shell reads the last: keep one, then run again"
        );
    }

    /// A value a shell computes could not be put back byte for byte: refused.
    #[test]
    fn an_expression_value_is_refused() {
        for raw in ["\"${BASE}\"", "$(cat /x)", "`cat /x`", "pre$SUFFIX"] {
            let before = format!("MD_TOKEN={raw}\n");
            let e = edit(&before, "MD_TOKEN", "new").unwrap_err();
            assert!(e.contains("set from an expression"), "{raw}: {e}");
        }
        // Single quotes make it literal; an escaped dollar is one too.
        assert!(edit("MD_TOKEN='$lit'\n", "MD_TOKEN", "new").is_ok());
        assert!(edit("MD_TOKEN=a\\$b\n", "MD_TOKEN", "new").is_ok());
    }

    /// A second entry for the key where this editor would not see it: a shell
    /// (or python-dotenv, or systemd) would, and read the stale value.
    #[test]
    fn hidden_second_entries_are_refused() {
        for before in [
            "KEY=stale\nOTHER=1\rKEY=live\n",
            "A=1 KEY=live\n",
            "export A KEY=live\n",
            "A=1; KEY=live\n",
            "declare -x KEY=live\n",
            "KEY=a KEY=b\n",
        ] {
            let e = edit(before, "KEY", "new").unwrap_err();
            assert!(!e.contains("live"), "never quotes a value: {e}");
            assert!(
                e.contains("line 1") || e.contains("line 2"),
                "{before:?}: {e}"
            );
        }
        // Quoted, commented or part of another word: not an assignment.
        for fine in [
            "NOTE='A=1 KEY=x'\n",
            "NOTE=\"a KEY=x\"\n",
            "A=1 # KEY=x\n",
            "# KEY=x\n",
            "MYKEY=x\n",
            "A=b\\ KEY=x\n",
            "A=1\r\nB=2\r\n",
        ] {
            assert!(edit(fine, "KEY", "new").is_ok(), "{fine:?}");
        }
    }

    /// A backslash at the end of the last line, newline or not, would join
    /// the appended entry to that line (`A=fooTOK=...` for a shell).
    #[test]
    fn a_trailing_continuation_is_refused_with_or_without_a_newline() {
        for before in ["A=foo\\\n", "A=foo\\", "A=1\necho \\\n", "A=1\r\nB=x\\\r\n"] {
            let e = edit(before, "TOK", "v").unwrap_err();
            assert!(e.contains("continue"), "{before:?}: {e}");
            assert!(e.contains("line"), "{before:?}: {e}");
        }
        assert!(edit("A=1\n# ends in \\\n", "TOK", "v").is_ok());
        assert!(
            edit("A=a\\\\\n", "TOK", "v").is_ok(),
            "an escaped backslash ends the line"
        );
    }

    #[test]
    fn a_multi_line_value_is_replaced_whole() {
        let before = "A=1\nMD_TOKEN=\"line one\nMD_TOKEN=not-a-key\nend\"\nB=2\n";
        let (after, prev) = edit(before, "MD_TOKEN", "t").unwrap();
        assert_eq!(after, "A=1\nMD_TOKEN=t\nB=2\n");
        assert_eq!(prev.as_deref(), Some("line one\nMD_TOKEN=not-a-key\nend"));
        // A key-looking line inside another entry's quoted value is left alone.
        let before = "NOTE='see\nMD_TOKEN=inside'\n";
        let (after, prev) = edit(before, "MD_TOKEN", "t").unwrap();
        assert_eq!(after, "NOTE='see\nMD_TOKEN=inside'\nMD_TOKEN=t\n");
        assert_eq!(prev, None);
        // A quote that is never closed, a continuation into nothing: refused.
        assert_eq!(
            edit("A=1\nB='open\nC=2\n", "MD_TOKEN", "t"),
            Err("the value at line 2 never ends (a quote left open, or a backslash that would continue into the next entry)".into())
        );
        assert!(edit("A=1\nB=x\\", "MD_TOKEN", "t").is_err());
        assert!(edit("A=1\necho \\", "MD_TOKEN", "t").is_err());
        assert!(edit("A=1\n# ends in \\", "MD_TOKEN", "t").is_ok());
    }

    #[test]
    fn appends_with_the_files_own_line_ending() {
        assert_eq!(edit("A=1", "K", "v").unwrap().0, "A=1\nK=v\n");
        assert_eq!(edit("A=1\r\n", "K", "v").unwrap().0, "A=1\r\nK=v\r\n");
        assert_eq!(edit("", "K", "it's").unwrap().0, "K='it'\\''s'\n");
    }

    #[test]
    fn previous_values_are_read_as_a_shell_would() {
        assert_eq!(unquote("'a b' # c"), "a b");
        assert_eq!(unquote("\"x\\\"y\""), "x\"y");
        assert_eq!(unquote("plain"), "plain");
        assert_eq!(unquote("'it'\\''s'"), "it's");
    }

    fn never() -> bool {
        false
    }

    const WAIT: Wait<'static> = Wait {
        cancelled: &never,
        timeout: std::time::Duration::from_secs(5),
    };

    #[test]
    fn file_keeps_its_mode_and_rejects_bad_keys() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("app.env");
        std::fs::write(&p, "KEEP=1\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        to_env_file(&p, "MD", &SecretString::new("v"), &WAIT).unwrap();
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o644
        );
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "KEEP=1\nMD=v\n");
        assert!(to_env_file(&p, "1BAD", &SecretString::new("x"), &WAIT).is_err());
        let fresh = dir.path().join("new.env");
        to_env_file(&fresh, "MD", &SecretString::new("v"), &WAIT).unwrap();
        assert_eq!(
            std::fs::metadata(&fresh).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}
