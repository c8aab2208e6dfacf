//! The bundled workflows, compiled into the binary, and their header comments.

/// `scripts/NAME.rhai`, by name.
pub const SCRIPTS: &[(&str, &str)] = &[
    ("audit-report", include_str!("../scripts/audit-report.rhai")),
    (
        "cleanup-tokens",
        include_str!("../scripts/cleanup-tokens.rhai"),
    ),
    (
        "offboard-account",
        include_str!("../scripts/offboard-account.rhai"),
    ),
    ("overview", include_str!("../scripts/overview.rhai")),
    (
        "provision-account",
        include_str!("../scripts/provision-account.rhai"),
    ),
    (
        "reconcile-inventory",
        include_str!("../scripts/reconcile-inventory.rhai"),
    ),
    (
        "rotate-tokens",
        include_str!("../scripts/rotate-tokens.rhai"),
    ),
    (
        "set-ducklings",
        include_str!("../scripts/set-ducklings.rhai"),
    ),
];

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

#[cfg(test)]
mod tests {
    /// Every file in scripts/ and stdlib/ is compiled into the binary.
    #[test]
    fn every_bundled_file_is_listed() {
        let listed = |dir: &str, names: Vec<&str>| {
            let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
            for entry in std::fs::read_dir(root).unwrap() {
                let path = entry.unwrap().path();
                let stem = path.file_stem().unwrap().to_string_lossy().to_string();
                assert!(
                    names.contains(&stem.as_str()),
                    "{dir}/{stem}.rhai is not bundled"
                );
            }
        };
        listed("scripts", super::SCRIPTS.iter().map(|(n, _)| *n).collect());
        listed(
            "stdlib",
            crate::script::resolver::STDLIB
                .iter()
                .map(|(n, _)| *n)
                .collect(),
        );
    }
}
