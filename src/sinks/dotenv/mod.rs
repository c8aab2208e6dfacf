//! The syntax of env files (`KEY=value` lines, as read by shells, systemd's
//! `EnvironmentFile`, Docker and dotenv libraries): finding the entry that
//! sets a key and replacing it without touching any other byte.

mod names;
pub use names::{check_env_name, valid_env_key};

/// One logical entry: one or more physical lines (a quoted value may span lines).
struct Entry<'a> {
    /// The physical lines, each with its line ending.
    text: &'a str,
    assignment: Option<Assignment<'a>>,
}

struct Assignment<'a> {
    indent: &'a str,
    export: &'a str,
    key: &'a str,
    /// Everything after `=` up to (not including) the final line ending.
    value: &'a str,
    ending: &'a str,
}

/// Splits a file into logical entries; concatenating their texts gives the
/// file back. `Err(line)` when the quoted value of the entry starting at
/// `line` is never closed (a shell would read the rest of the file into it).
fn entries(content: &str) -> Result<Vec<Entry<'_>>, usize> {
    let mut out = Vec::new();
    let mut line_no = 1;
    let mut rest = content;
    while !rest.is_empty() {
        let line_end = |s: &str| s.find('\n').map(|i| i + 1).unwrap_or(s.len());
        let first = &rest[..line_end(rest)];
        let Some(head) = assignment_head(first) else {
            out.push(Entry {
                text: first,
                assignment: None,
            });
            rest = &rest[first.len()..];
            line_no += 1;
            continue;
        };
        // Scan the value for quotes that stay open past the end of the line,
        // then take the line ending of the physical line it ends on.
        let value_start = head.3;
        let mut len = value_end(&rest[value_start..]).map_err(|_| line_no)? + value_start;
        len += line_end(&rest[len..]);
        let text = &rest[..len];
        let body = text.trim_end_matches(['\n', '\r']);
        let ending = &text[body.len()..];
        out.push(Entry {
            text,
            assignment: Some(Assignment {
                indent: head.0,
                export: head.1,
                key: head.2,
                value: &body[value_start..],
                ending,
            }),
        });
        line_no += text.matches('\n').count();
        rest = &rest[len..];
    }
    Ok(out)
}

/// `(indent, export prefix, key, offset of the value)` for a line that assigns.
fn assignment_head(line: &str) -> Option<(&str, &str, &str, usize)> {
    let trimmed = line.trim_start_matches([' ', '\t']);
    let indent = &line[..line.len() - trimmed.len()];
    let (export, after) = match trimmed.strip_prefix("export") {
        Some(r) if r.starts_with([' ', '\t']) => {
            let r2 = r.trim_start_matches([' ', '\t']);
            (&trimmed[..trimmed.len() - r2.len()], r2)
        }
        _ => ("", trimmed),
    };
    let key_len = after
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(after.len());
    let key = &after[..key_len];
    if !valid_env_key(key) {
        return None;
    }
    let rest = after[key_len..].trim_start_matches([' ', '\t']);
    let value = rest.strip_prefix('=')?;
    Some((indent, export, key, line.len() - value.len()))
}

/// Where a value ends (byte offset into `s`): the end of the line it ends on,
/// following quotes across line breaks. `Err` with the end of the file when a
/// quote is never closed.
fn value_end(s: &str) -> Result<usize, usize> {
    #[derive(PartialEq)]
    enum Q {
        None,
        Single,
        Double,
    }
    let mut q = Q::None;
    let mut chars = s.char_indices().peekable();
    let mut prev_space = false;
    while let Some((i, c)) = chars.next() {
        match q {
            Q::None => match c {
                '\n' => return Ok(i),
                '\\' => {
                    // A backslash at the very end continues into nothing.
                    let escaped = chars.next();
                    if escaped.is_none() {
                        return Err(s.len());
                    }
                }
                '\'' => q = Q::Single,
                '"' => q = Q::Double,
                '#' if prev_space => {
                    // A comment runs to the end of the line.
                    return Ok(s[i..].find('\n').map(|j| i + j).unwrap_or(s.len()));
                }
                _ => {}
            },
            Q::Single => {
                if c == '\'' {
                    q = Q::None;
                }
            }
            Q::Double => match c {
                '\\' => {
                    chars.next();
                }
                '"' => q = Q::None,
                _ => {}
            },
        }
        prev_space = c == ' ' || c == '\t';
    }
    if q == Q::None {
        Ok(s.len())
    } else {
        Err(s.len())
    }
}

/// The value as a shell would read it: quotes removed, escapes applied, a
/// trailing comment dropped.
pub(super) fn unquote(raw: &str) -> String {
    let mut out = String::new();
    let mut chars = raw.trim().chars().peekable();
    let mut prev_space = false;
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                for c in chars.by_ref() {
                    if c == '\'' {
                        break;
                    }
                    out.push(c);
                }
            }
            '"' => {
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => match chars.next() {
                            Some(n @ ('"' | '\\' | '$' | '`')) => out.push(n),
                            Some('\n') => {}
                            Some(n) => {
                                out.push('\\');
                                out.push(n);
                            }
                            None => out.push('\\'),
                        },
                        c => out.push(c),
                    }
                }
            }
            '\\' => {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            }
            '#' if prev_space => break,
            c => out.push(c),
        }
        prev_space = c == ' ' || c == '\t';
    }
    out.trim_end().to_string()
}

/// The value as it goes into the file: bare when that is safe, single-quoted otherwise.
fn quoted(value: &str) -> String {
    let safe = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.,:/+@%=~".contains(c));
    if safe {
        value.to_string()
    } else {
        format!("'{}'", value.replace('\'', "'\\''"))
    }
}

/// Whether `text` assigns `key` somewhere a shell would see it besides the
/// start of an entry: after whitespace or `;`, `&`, `|`, `(` outside quotes
/// and comments (`A=1 KEY=x`, `export A KEY=x`, `declare -x KEY=x`, `A=1; KEY=x`).
fn assigns_elsewhere(text: &str, key: &str, at_start: bool) -> bool {
    let mut single = false;
    let mut double = false;
    let mut boundary = at_start;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if single {
            single = c != '\'';
            continue;
        }
        match c {
            '\\' => {
                chars.next();
                boundary = false;
                continue;
            }
            '"' => double = !double,
            '\'' if !double => single = true,
            '#' if boundary && !double => {
                // A comment runs to the end of its line.
                while chars.peek().is_some_and(|(_, c)| *c != '\n') {
                    chars.next();
                }
            }
            _ if !double
                && boundary
                && text[i..].starts_with(key)
                && text[i + key.len()..].starts_with('=') =>
            {
                return true;
            }
            _ => {}
        }
        boundary = !double && (c.is_whitespace() || matches!(c, ';' | '&' | '|' | '('));
    }
    false
}

/// Whether a raw value is an expression a shell would expand (`$VAR`,
/// `${VAR}`, `$(cmd)`, backticks) rather than a literal: outside single quotes.
fn expands(raw: &str) -> bool {
    let mut single = false;
    let mut escaped = false;
    for c in raw.chars() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if !single => escaped = true,
            '\'' => single = !single,
            '$' | '`' if !single => return true,
            '#' => break,
            _ => {}
        }
    }
    false
}

/// The file with `key` set to `value`, and the value it had before. Refused
/// (`Err` with why, nothing changed) when it cannot be done safely: a quoted
/// value never closed or a trailing line continuation (a shell would read the
/// new entry into another value), the key set more than once (which one does
/// the workload read? a shell takes the last), or its value an expression
/// rather than a literal (it could not be put back as it was).
pub fn edit(content: &str, key: &str, value: &str) -> Result<(String, Option<String>), String> {
    let entries = entries_of(content)?;
    let mut lines_at = Vec::with_capacity(entries.len());
    let mut line = 1;
    for e in &entries {
        lines_at.push(line);
        line += e.text.matches('\n').count();
    }
    let setting: Vec<usize> = entries
        .iter()
        .enumerate()
        .filter(|(_, e)| e.assignment.as_ref().is_some_and(|a| a.key == key))
        .map(|(i, _)| i)
        .collect();
    if setting.len() > 1 {
        let lines: Vec<String> = setting.iter().map(|i| lines_at[*i].to_string()).collect();
        return Err(format!(
            "{key} is set {} times (lines {}); a shell reads the last: keep one, then run again",
            setting.len(),
            lines.join(", ")
        ));
    }
    // A carriage return that ends no line: some readers (python-dotenv,
    // systemd) break lines there, a shell does not. Which line is the key on?
    if let Some(at) = content
        .char_indices()
        .find(|(i, c)| *c == '\r' && !content[i + 1..].starts_with('\n'))
        .map(|(i, _)| i)
    {
        return Err(format!(
            "line {} has a carriage return inside it: tools disagree on where its lines end",
            content[..at].matches('\n').count() + 1
        ));
    }
    // The key set in a form this editor does not rewrite (two assignments on
    // one line, `declare -x`, ...) would be a second, hidden entry.
    for (i, e) in entries.iter().enumerate() {
        // Our own entry: only its value; any other: the whole line.
        let (rest, at_start) = match &e.assignment {
            Some(a) if a.key == key => (a.value, false),
            _ => (e.text, true),
        };
        if assigns_elsewhere(rest, key, at_start) {
            return Err(format!(
                "{key} is also set inside line {}, in a form mdops does not rewrite: keep one plain {key}=... line",
                lines_at[i]
            ));
        }
    }
    let mut out = String::with_capacity(content.len() + key.len() + value.len() + 2);
    let mut previous = None;
    for (i, entry) in entries.iter().enumerate() {
        match &entry.assignment {
            Some(a) if a.key == key => {
                if expands(a.value) {
                    return Err(format!(
                        "{key} at line {} is set from an expression ({}), not a literal value: it could not be put back as it was",
                        lines_at[i],
                        a.value.trim()
                    ));
                }
                previous = Some(unquote(a.value));
                out.push_str(&format!(
                    "{}{}{key}={}{}",
                    a.indent,
                    a.export,
                    quoted(value),
                    a.ending
                ));
            }
            _ => out.push_str(entry.text),
        }
    }
    if previous.is_none() {
        // A last line that ends in a backslash would continue into the new entry.
        let body = out
            .strip_suffix('\n')
            .map(|b| b.strip_suffix('\r').unwrap_or(b))
            .unwrap_or(&out);
        let last = body.rsplit('\n').next().unwrap_or("");
        let continued = last.len() - last.trim_end_matches('\\').len();
        if continued % 2 == 1 && !last.trim_start().starts_with('#') {
            return Err(format!(
                "line {} ends in a backslash: it would continue into the new entry",
                body.matches('\n').count() + 1
            ));
        }
        let ending = if content.contains("\r\n") {
            "\r\n"
        } else {
            "\n"
        };
        if !out.is_empty() && !out.ends_with('\n') {
            out.push_str(ending);
        }
        out.push_str(&format!("{key}={}{ending}", quoted(value)));
    }
    // Read back as a shell would: exactly one entry for the key, with the new
    // value, and every other entry as it was. A line continuation, say, that
    // would swallow the new entry into the previous value fails here.
    let after = entries_of(&out)?;
    let set: Vec<&Assignment> = after
        .iter()
        .filter_map(|e| e.assignment.as_ref())
        .filter(|a| a.key == key)
        .collect();
    let others = |all: &[Entry<'_>]| -> Vec<String> {
        all.iter()
            .filter(|e| e.assignment.as_ref().is_none_or(|a| a.key != key))
            .map(|e| e.text.trim_end_matches(['\r', '\n']).to_string())
            .collect()
    };
    let others_kept = others(&after) == others(&entries);
    if set.len() != 1 || unquote(set[0].value) != value || !others_kept {
        let last = lines_at.last().copied().unwrap_or(1);
        return Err(format!(
            "the new entry would not read back as its own line (line {last} continues into it?)"
        ));
    }
    Ok((out, previous))
}

fn entries_of(content: &str) -> Result<Vec<Entry<'_>>, String> {
    entries(content).map_err(|line| {
        format!("the value at line {line} never ends (a quote left open, or a backslash that would continue into the next entry)")
    })
}

#[cfg(test)]
mod properties;
