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
        let body: String = f.doc.lines().map(|l| format!("    {l}\n")).collect();
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
    if let Some(text) = script::resolver::stdlib(name) {
        out(&format!("{}\n", crate::catalog::header(text)));
        return Ok(exit::OK);
    }
    let names: Vec<String> = all.iter().map(|f| f.qualified.clone()).collect();
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
