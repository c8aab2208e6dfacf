//! Questions to the operator on the terminal (stderr for the question, stdin
//! for the answer). Only called when both are terminals.

use std::io::{BufRead, Write};

fn ask(question: &str) -> Option<String> {
    let mut err = std::io::stderr();
    let _ = write!(err, "{question}");
    let _ = err.flush();
    let mut line = String::new();
    match std::io::stdin().lock().read_line(&mut line) {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(line.trim().to_string()),
    }
}

/// True when the operator types `expected` exactly.
pub fn type_to_confirm(question: &str, expected: &str) -> bool {
    ask(&format!("{question}\nType {expected} to confirm: ")).is_some_and(|a| a == expected)
}

/// True for `y` or `yes` (any case).
pub fn yes_no(question: &str) -> bool {
    ask(&format!("{question} [y/N] "))
        .is_some_and(|a| a.eq_ignore_ascii_case("y") || a.eq_ignore_ascii_case("yes"))
}
