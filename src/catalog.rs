//! The bundled workflows, compiled into the binary, and their header comments.

/// `scripts/NAME.rhai`, by name.
pub const SCRIPTS: &[(&str, &str)] = &[("overview", include_str!("../scripts/overview.rhai"))];

pub fn script(name: &str) -> Option<&'static str> {
    let name = name.strip_suffix(".rhai").unwrap_or(name);
    SCRIPTS.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

/// The leading `//!` comment block of a script, without the markers.
pub fn header(text: &str) -> String {
    text.lines()
        .skip_while(|l| l.starts_with("#!"))
        .take_while(|l| l.starts_with("//!"))
        .map(|l| {
            let l = l.trim_start_matches("//!");
            l.strip_prefix(' ').unwrap_or(l)
        })
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_string()
}

/// The first line of the header: the one-line description.
pub fn summary(text: &str) -> String {
    header(text).lines().next().unwrap_or("").to_string()
}
