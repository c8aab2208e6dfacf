//! The REPL's history file, kept by hand rather than by the line editor: it
//! is created 0600, never opened through a symlink (a planted link must not
//! make mdops rewrite another file), and only ever appended to, one entry
//! per line with newlines and backslashes escaped.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

pub struct History {
    path: PathBuf,
}

/// Most entries loaded back into a session.
pub const MAX_ENTRIES: usize = 5000;

fn open(path: &Path, append: bool) -> std::io::Result<std::fs::File> {
    let mut o = std::fs::OpenOptions::new();
    if append {
        o.create(true).append(true);
    } else {
        o.read(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600).custom_flags(libc::O_NOFOLLOW);
    }
    o.open(path).map_err(|e| {
        if e.raw_os_error() == Some(libc::ELOOP) {
            std::io::Error::other("it is a symbolic link; history stays off rather than follow it")
        } else {
            e
        }
    })
}

fn escape(entry: &str) -> String {
    entry
        .replace('\\', "\\\\")
        .replace('\n', "\\n")
        .replace('\r', "\\r")
}

fn unescape(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('r') => out.push('\r'),
                Some(other) => out.push(other),
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

impl History {
    /// Prepares the file (creating it 0600 in a 0700 directory).
    pub fn open(path: PathBuf) -> std::io::Result<History> {
        if let Some(dir) = path.parent() {
            crate::lock::private_dir(dir)?;
        }
        open(&path, true)?;
        Ok(History { path })
    }

    /// The last entries, oldest first.
    pub fn load(&self) -> Vec<String> {
        let Ok(f) = open(&self.path, false) else {
            return Vec::new();
        };
        let mut entries: Vec<String> = std::io::BufReader::new(f)
            .lines()
            .map_while(Result::ok)
            .filter(|l| !l.is_empty() && l != "#V2")
            .map(|l| unescape(&l))
            .collect();
        if entries.len() > MAX_ENTRIES {
            entries.drain(..entries.len() - MAX_ENTRIES);
        }
        entries
    }

    pub fn append(&self, entry: &str) -> std::io::Result<()> {
        let mut f = open(&self.path, true)?;
        f.write_all(format!("{}\n", escape(entry)).as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_links_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let h = History::open(dir.path().join("h")).unwrap();
        h.append("fn f() {\n  \"a\\\\b\"\n}").unwrap();
        h.append("f()").unwrap();
        assert_eq!(h.load(), ["fn f() {\n  \"a\\\\b\"\n}", "f()"]);
        let target = dir.path().join("target");
        std::fs::write(&target, "keep me\n").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(History::open(link).is_err());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me\n");
    }
}
