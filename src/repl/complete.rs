//! What the REPL offers on Tab and hints while typing. Pure functions over a
//! snapshot of the session (names in scope, map keys), so they are fast and
//! testable without a terminal.

use crate::script::docs::FnDoc;
use std::collections::BTreeMap;

/// The REPL's own commands: name, argument, what it does. `:help` and Tab
/// completion both read this table.
pub const COMMANDS: &[(&str, &str, &str)] = &[
    (
        ":help",
        "[NAME]",
        "this overview, or the reference of a function or namespace (:help tokens::create)",
    ),
    (":vars", "", "the variables in scope"),
    (
        ":load",
        "FILE",
        "run a script file in this session; its functions and variables stay",
    ),
    (":json", "", "toggle JSON output of results"),
    (":clear", "", "forget variables, functions and imports"),
    (":quit", "", "leave (also :exit and Ctrl-D)"),
    (":exit", "", ""),
];

/// What completion knows about the session, refreshed after each evaluation.
#[derive(Debug, Clone, Default)]
pub struct Known {
    /// `tokens::list`, `arg`, ...: every documented function.
    pub functions: Vec<FnDoc>,
    /// Namespaces with their trailing `::`.
    pub namespaces: Vec<String>,
    /// Variables in scope, and the keys of those that hold maps.
    pub variables: BTreeMap<String, Vec<String>>,
    /// Functions the session defined.
    pub script_functions: Vec<String>,
}

impl Known {
    pub fn new(functions: Vec<FnDoc>) -> Known {
        let mut namespaces: Vec<String> = functions
            .iter()
            .filter_map(|f| {
                f.qualified
                    .split_once("::")
                    .map(|(ns, _)| format!("{ns}::"))
            })
            .collect();
        namespaces.sort();
        namespaces.dedup();
        Known {
            functions,
            namespaces,
            ..Default::default()
        }
    }
}

fn word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':' || c == '.'
}

/// Completions for the word ending at `pos`: where it starts, and the candidates.
pub fn complete(known: &Known, line: &str, pos: usize) -> (usize, Vec<String>) {
    let before = &line[..pos];
    if before.starts_with(':') && !before.contains(' ') {
        let c = COMMANDS
            .iter()
            .map(|(c, _, _)| *c)
            .filter(|c| c.starts_with(before))
            .map(|c| c.to_string())
            .collect();
        return (0, c);
    }
    let start = before
        .char_indices()
        .rev()
        .find(|(_, c)| !word_char(*c))
        .map(|(i, c)| i + c.len_utf8())
        .unwrap_or(0);
    let word = &before[start..];
    // `var.partial`: the keys of a map held by `var`.
    if let Some((var, partial)) = word.rsplit_once('.') {
        let keys = known.variables.get(var).cloned().unwrap_or_default();
        let offset = start + var.len() + 1;
        let mut c: Vec<String> = keys
            .into_iter()
            .filter(|k| k.starts_with(partial))
            .collect();
        c.sort();
        return (offset, c);
    }
    let mut c: Vec<String> = Vec::new();
    if word.contains("::") {
        c.extend(
            known
                .functions
                .iter()
                .filter(|f| f.qualified.starts_with(word))
                .map(|f| format!("{}(", f.qualified)),
        );
    } else {
        c.extend(
            known
                .namespaces
                .iter()
                .filter(|n| n.starts_with(word))
                .cloned(),
        );
        c.extend(
            known
                .functions
                .iter()
                .filter(|f| {
                    !f.qualified.contains("::")
                        && !f.qualified.contains('.')
                        && f.qualified.starts_with(word)
                })
                .map(|f| format!("{}(", f.qualified)),
        );
        c.extend(
            known
                .script_functions
                .iter()
                .filter(|f| f.starts_with(word))
                .map(|f| format!("{f}(")),
        );
        c.extend(
            known
                .variables
                .keys()
                .filter(|v| v.starts_with(word))
                .cloned(),
        );
    }
    c.sort();
    c.dedup();
    (start, c)
}

/// While the cursor is inside the parentheses of a known function, its
/// signature(s), to show as a hint.
pub fn hint(known: &Known, line: &str, pos: usize) -> Option<String> {
    if pos != line.len() {
        return None;
    }
    // The innermost call whose `(` is still open.
    let mut depth = 0i32;
    let bytes = line.as_bytes();
    let mut open = None;
    for i in (0..pos).rev() {
        match bytes[i] {
            b')' => depth += 1,
            b'(' if depth == 0 => {
                open = Some(i);
                break;
            }
            b'(' => depth -= 1,
            _ => {}
        }
    }
    let open = open?;
    let name_start = line[..open]
        .char_indices()
        .rev()
        .find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '_' || *c == ':'))
        .map(|(i, c)| i + c.len_utf8())
        .unwrap_or(0);
    let name = &line[name_start..open];
    let sigs: Vec<&str> = known
        .functions
        .iter()
        .filter(|f| f.qualified == name)
        .map(|f| f.signature.as_str())
        .collect();
    if sigs.is_empty() {
        return None;
    }
    Some(format!("    {}", sigs.join("  |  ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known() -> Known {
        let f = |q: &str, sig: &str| FnDoc {
            qualified: q.into(),
            signature: sig.into(),
            doc: String::new(),
        };
        let mut k = Known::new(vec![
            f("tokens::list", "tokens::list(username: string) -> array"),
            f(
                "tokens::create",
                "tokens::create(username: string, name: string) -> map",
            ),
            f(
                "tokens::create",
                "tokens::create(username: string, options: map) -> map",
            ),
            f("accounts::list", "accounts::list() -> array"),
            f("arg", "arg(name: string) -> string"),
        ]);
        k.variables.insert(
            "tok".into(),
            vec!["id".into(), "name".into(), "token".into()],
        );
        k.variables.insert("total".into(), vec![]);
        k.script_functions.push("rotate".into());
        k
    }

    #[test]
    fn namespaces_functions_variables_keys_commands() {
        let k = known();
        assert_eq!(
            complete(&k, "tok", 3),
            (0, vec!["tok".into(), "tokens::".into()])
        );
        assert_eq!(
            complete(&k, "x = tokens::", 12),
            (4, vec!["tokens::create(".into(), "tokens::list(".into()])
        );
        assert_eq!(
            complete(&k, "print(tokens::l", 15),
            (6, vec!["tokens::list(".into()])
        );
        assert_eq!(complete(&k, "tok.na", 6), (4, vec!["name".into()]));
        assert_eq!(complete(&k, "tok.", 4).1.len(), 3);
        assert_eq!(complete(&k, "ro", 2), (0, vec!["rotate(".into()]));
        assert_eq!(complete(&k, ":he", 3), (0, vec![":help".into()]));
        assert_eq!(complete(&k, "ar", 2), (0, vec!["arg(".into()]));
    }

    #[test]
    fn hints_show_signatures_inside_calls() {
        let k = known();
        assert_eq!(
            hint(&k, "tokens::list(", 13).unwrap(),
            "    tokens::list(username: string) -> array"
        );
        assert!(hint(&k, "tokens::create(\"a\", ", 20)
            .unwrap()
            .contains("  |  "));
        assert_eq!(hint(&k, "tokens::list(\"a\")", 17), None);
        assert_eq!(hint(&k, "print(tokens::list(x), ", 23), None);
        assert_eq!(hint(&k, "unknown(", 8), None);
    }
}
