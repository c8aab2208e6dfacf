//! `mdops check SCRIPT`: compile and lint without running anything.

use crate::failure::{exit, Failure};
use crate::script::diagnostics::Sources;
use crate::script::{self, PrintTo};
use std::sync::Arc;

pub fn check(spec: &str) -> Result<i32, Failure> {
    let (name, text) = super::run::load_script(spec)?;
    let sources = Arc::new(Sources::default());
    sources.add(&name, &text);
    let fail = |d: &script::diagnostics::Diagnostic| super::run::fail(d, &sources);
    script::params::extract(&text, &name).map_err(|d| fail(&d))?;
    let engine = script::engine(None, sources.clone(), PrintTo::Stderr);
    let ast = script::compile(&engine, &name, &text, &sources).map_err(|d| fail(&d))?;
    let found = script::lint::findings(&engine, &ast, &name, true);
    if found.is_empty() {
        crate::output::out(&format!("{name}: ok\n"));
        return Ok(exit::OK);
    }
    let mut text: String = found.iter().map(|d| d.render(&sources)).collect();
    text.push_str(&format!(
        "{name}: {} problem{}\n",
        found.len(),
        if found.len() == 1 { "" } else { "s" }
    ));
    let mut f = fail(&found[0]);
    f.message = text;
    Err(f)
}
