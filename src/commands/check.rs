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
    script::lint::check(&engine, &ast, &name).map_err(|d| fail(&d))?;
    crate::output::out(&format!("{name}: ok\n"));
    Ok(exit::OK)
}
