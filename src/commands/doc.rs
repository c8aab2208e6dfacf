//! `mdops doc [NAME]` and `mdops scripts`: the reference, read from the
//! engine's metadata (each binding's doc comment) and from the bundled
//! scripts' headers and parameter declarations.

use crate::failure::{exit, Failure};
use crate::output::out;
use crate::script::diagnostics::Sources;
use crate::script::{self, docs, PrintTo};
use std::sync::Arc;

pub fn list_scripts() -> Result<i32, Failure> {
    let width = crate::catalog::SCRIPTS
        .iter()
        .map(|(n, _)| n.len())
        .max()
        .unwrap_or(0);
    let mut text = String::new();
    for (name, body) in crate::catalog::SCRIPTS {
        text.push_str(&format!(
            "{name:<width$}  {}\n",
            crate::catalog::summary(body)
        ));
    }
    out(&text);
    Ok(exit::OK)
}

/// A workflow's page: its header, then its declared parameters. Every line
/// is escaped: a script's comments must not drive the reader's terminal.
/// A script that does not compile, or whose declaration is invalid, has no
/// page: the error, with its position, instead.
pub fn script_page(name: &str, text: &str) -> Result<String, Failure> {
    let sources = Sources::default();
    sources.add(name, text);
    let mut page = format!("{}\n", crate::catalog::header(text));
    match script::params::extract(text, name) {
        Ok(Some(p)) => {
            page.push('\n');
            page.push_str(&p.render());
        }
        Ok(None) => {}
        Err(d) => return Err(super::run::fail(&d, &sources)),
    }
    Ok(page
        .lines()
        .map(|l| format!("{}\n", crate::output::escape(l)))
        .collect())
}

pub fn doc(name: Option<&str>) -> Result<i32, Failure> {
    let sources = Arc::new(Sources::default());
    let engine = script::engine(None, sources, PrintTo::Stderr);
    let all = docs::functions(&engine);
    let render = |f: &docs::FnDoc| {
        let body: String = f
            .doc
            .lines()
            .map(|l| {
                if l.trim().is_empty() {
                    "\n".to_string()
                } else {
                    format!("    {l}\n")
                }
            })
            .collect();
        format!("{}\n{body}\n", f.signature)
    };
    let Some(name) = name else {
        out(&all.iter().map(render).collect::<String>());
        return Ok(exit::OK);
    };
    let name = name.trim_end_matches("::");
    let matches: Vec<&docs::FnDoc> = all
        .iter()
        .filter(|f| f.qualified == name || f.qualified.starts_with(&format!("{name}::")))
        .collect();
    if !matches.is_empty() {
        out(&matches.into_iter().map(render).collect::<String>());
        return Ok(exit::OK);
    }
    if let Some(text) = crate::catalog::script(name) {
        out(&script_page(&format!("scripts/{name}.rhai"), text)?);
        return Ok(exit::OK);
    }
    if name.ends_with(".rhai") || name.contains('/') {
        let (display, text) = super::run::load_script(name)?;
        out(&script_page(&display, &text)?);
        return Ok(exit::OK);
    }
    if let Some((module, _)) = name.split_once("::") {
        if let Some(text) = script::resolver::stdlib(module) {
            let functions = docs::module_functions(module, text).map_err(Failure::script)?;
            let found: String = functions
                .iter()
                .filter(|f| f.qualified == name)
                .map(render)
                .collect();
            if !found.is_empty() {
                out(&found);
                return Ok(exit::OK);
            }
        }
    }
    if let Some(text) = script::resolver::stdlib(name) {
        let module = name.trim_start_matches("stdlib/").trim_end_matches(".rhai");
        let mut page = format!(
            "{}\n\nImport with `import \"{module}\" as {module};`\n\n",
            crate::catalog::header(text)
        );
        let functions = docs::module_functions(module, text).map_err(Failure::script)?;
        page.push_str(&functions.iter().map(render).collect::<String>());
        out(&page);
        return Ok(exit::OK);
    }
    let builtins = docs::builtins(&engine);
    let theirs: Vec<&docs::FnDoc> = builtins.iter().filter(|f| f.qualified == name).collect();
    if !theirs.is_empty() {
        out(&format!(
            "(Rhai's standard library)\n\n{}",
            theirs.into_iter().map(render).collect::<String>()
        ));
        return Ok(exit::OK);
    }
    let mut names: Vec<String> = all.iter().map(|f| f.qualified.clone()).collect();
    names.extend(builtins.iter().map(|f| f.qualified.clone()));
    let hint = crate::script::diagnostics::suggest(name, &names)
        .map(|s| format!(" (did you mean `{s}`?)"))
        .unwrap_or_default();
    Err(Failure::usage(format!(
        "no function, namespace or workflow named {:?}{hint}",
        crate::output::escape(name)
    )))
}

/// `mdops completions SHELL`: the completion script for that shell on stdout.
pub fn completions(shell: clap_complete::Shell) -> Result<i32, Failure> {
    use clap::CommandFactory;
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut crate::cli::Cli::command(), "mdops", &mut buf);
    out(&String::from_utf8_lossy(&buf));
    Ok(exit::OK)
}

/// `mdops man`: the manual page in roff on stdout: the main page, then a
/// section per command with its synopsis and options.
pub fn man() -> Result<i32, Failure> {
    use clap::CommandFactory;
    let mut cmd = crate::cli::Cli::command();
    cmd.build();
    let mut buf = Vec::new();
    let fail = |e: std::io::Error| Failure::script(format!("cannot render the manual: {e}"));
    clap_mangen::Man::new(cmd.clone())
        .render(&mut buf)
        .map_err(fail)?;
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        let page = clap_mangen::Man::new(sub.clone());
        let mut part = Vec::new();
        page.render_synopsis_section(&mut part).map_err(fail)?;
        page.render_options_section(&mut part).map_err(fail)?;
        let title = format!(".SH \"MDOPS {}\"", sub.get_name().to_uppercase());
        for line in String::from_utf8_lossy(&part).lines() {
            let line = match line {
                ".SH SYNOPSIS" => title.as_str(),
                ".SH OPTIONS" => ".SS Options",
                other => other,
            };
            buf.extend_from_slice(line.as_bytes());
            buf.push(b'\n');
            if line == title {
                if let Some(about) = sub.get_about() {
                    buf.extend_from_slice(format!("{about}\n.br\n").as_bytes());
                }
            }
        }
    }
    out(&String::from_utf8_lossy(&buf));
    Ok(exit::OK)
}

/// `mdops doc --definitions DIR`: Rhai definition files (`*.d.rhai`) for the
/// language server (every function with its doc comment, the bundled modules
/// under their import names) and a `Rhai.toml` that includes them.
pub fn definitions(dir: &std::path::Path) -> Result<i32, Failure> {
    let sources = Arc::new(Sources::default());
    let engine = script::engine(None, sources, PrintTo::Stderr);
    std::fs::create_dir_all(dir)
        .map_err(|e| Failure::usage(format!("cannot create {}: {e}", dir.display())))?;
    let cannot =
        |e: std::io::Error| Failure::usage(format!("cannot write to {}: {e}", dir.display()));
    engine
        .definitions()
        .with_headers(true)
        .include_standard_packages(true)
        .write_to_dir(dir)
        .map_err(cannot)?;
    // The bundled modules, as `import "NAME" as NAME;` makes them available.
    for (name, text) in script::resolver::STDLIB {
        let mut defs = format!("module {name};\n");
        for f in docs::module_functions(name, text).map_err(Failure::script)? {
            defs.push('\n');
            for line in f.doc.lines() {
                defs.push_str(&format!("/// {line}\n"));
            }
            let (_, params) = f.signature.split_once('(').unwrap_or_default();
            let params: Vec<String> = params
                .trim_end_matches(')')
                .split(", ")
                .filter(|p| !p.is_empty())
                .map(|p| format!("{p}: ?"))
                .collect();
            let short = f.qualified.rsplit("::").next().unwrap_or_default();
            defs.push_str(&format!("fn {short}({}) -> ?;\n", params.join(", ")));
        }
        std::fs::write(dir.join(format!("{name}.d.rhai")), defs).map_err(cannot)?;
    }
    let config = dir.join("Rhai.toml");
    if !config.exists() {
        std::fs::write(
            &config,
            "# Rhai language server settings, written by `mdops doc --definitions`.\n\
             [source]\ninclude = [\"**/*.rhai\"]\n",
        )
        .map_err(|e| Failure::usage(format!("cannot write {}: {e}", config.display())))?;
    }
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".d.rhai") || n == "Rhai.toml")
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    out(&format!(
        "wrote to {}: {}\n",
        crate::output::escape(&dir.display().to_string()),
        files.join(", ")
    ));
    Ok(exit::OK)
}

/// `mdops scripts show NAME`: a bundled workflow's source on stdout.
pub fn show_script(name: &str) -> Result<i32, Failure> {
    let text = crate::catalog::script(name)
        .or_else(|| script::resolver::stdlib(name))
        .ok_or_else(|| unknown_script(name))?;
    out(text);
    Ok(exit::OK)
}

/// `mdops scripts eject NAME [DIR]`: a copy of a bundled workflow to start
/// one's own from. Never overwrites a file.
pub fn eject_script(name: &str, dir: Option<&std::path::Path>) -> Result<i32, Failure> {
    let name = name.strip_suffix(".rhai").unwrap_or(name);
    let text = crate::catalog::script(name).ok_or_else(|| unknown_script(name))?;
    let dir = dir.unwrap_or(std::path::Path::new("."));
    if !dir.is_dir() {
        return Err(Failure::usage(format!(
            "{} is not a directory",
            crate::output::escape(&dir.display().to_string())
        )));
    }
    let path = dir.join(format!("{name}.rhai"));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| {
            Failure::usage(format!(
                "cannot write {}: {}",
                path.display(),
                if e.kind() == std::io::ErrorKind::AlreadyExists {
                    "it exists (mdops never overwrites it)".to_string()
                } else {
                    e.to_string()
                }
            ))
        })?;
    use std::io::Write;
    file.write_all(text.as_bytes())
        .map_err(|e| Failure::usage(format!("cannot write {}: {e}", path.display())))?;
    out(&format!(
        "wrote {}: edit it, then `mdops run {}` (its imports still find the bundled modules)\n",
        path.display(),
        path.display()
    ));
    Ok(exit::OK)
}

fn unknown_script(name: &str) -> Failure {
    let names: Vec<String> = crate::catalog::SCRIPTS
        .iter()
        .map(|(n, _)| n.to_string())
        .collect();
    let hint = crate::script::diagnostics::suggest(name, &names)
        .map(|s| format!(" (did you mean `{s}`?)"))
        .unwrap_or_default();
    Failure::usage(format!(
        "no bundled workflow named {:?}{hint}; `mdops scripts` lists them",
        crate::output::escape(name)
    ))
}
