//! `import` resolution: bundled `stdlib/` modules first (compiled into the
//! binary), then files relative to the importing script.

use crate::script::diagnostics::Sources;
use rhai::{Engine, EvalAltResult, Module, ModuleResolver, Position, Scope, Shared};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Bundled modules: `import "NAME" as x;` finds `stdlib/NAME.rhai`.
pub const STDLIB: &[(&str, &str)] = &[
    ("report", include_str!("../../stdlib/report.rhai")),
    ("results", include_str!("../../stdlib/results.rhai")),
    ("rotation", include_str!("../../stdlib/rotation.rhai")),
    ("select", include_str!("../../stdlib/select.rhai")),
    ("sizing", include_str!("../../stdlib/sizing.rhai")),
];

pub fn stdlib(name: &str) -> Option<&'static str> {
    let name = name.strip_prefix("stdlib/").unwrap_or(name);
    let name = name.strip_suffix(".rhai").unwrap_or(name);
    STDLIB.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

/// Compiles each module once per program: [`Sources`] keeps what it compiled.
pub struct Resolver {
    sources: Arc<Sources>,
}

impl Resolver {
    pub fn new(sources: Arc<Sources>) -> Self {
        Self { sources }
    }

    fn locate(&self, importer: Option<&str>, path: &str) -> Result<(String, String), String> {
        if let Some(text) = stdlib(path) {
            let name = path.strip_prefix("stdlib/").unwrap_or(path);
            let name = name.strip_suffix(".rhai").unwrap_or(name);
            return Ok((format!("stdlib/{name}.rhai"), text.to_string()));
        }
        let base = importer
            .filter(|s| !s.starts_with("stdlib/") && !s.starts_with('<'))
            .and_then(|s| Path::new(s).parent().map(Path::to_path_buf))
            .unwrap_or_default();
        let mut file: PathBuf = base.join(path);
        if file.extension().is_none() {
            file.set_extension("rhai");
        }
        let text =
            std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        Ok((file.display().to_string(), text))
    }
}

impl ModuleResolver for Resolver {
    fn resolve(
        &self,
        engine: &Engine,
        source: Option<&str>,
        path: &str,
        pos: Position,
    ) -> Result<Shared<Module>, Box<EvalAltResult>> {
        let (name, text) = self
            .locate(source, path)
            .map_err(|_| Box::new(EvalAltResult::ErrorModuleNotFound(path.to_string(), pos)))?;
        self.sources.alias(path, &name);
        // Not locked while compiling: a module's own imports come back here.
        // Two workers compiling one module at once both get a working copy.
        if let Some(m) = self.sources.module(&name, &text) {
            return Ok(m);
        }
        self.sources.add(&name, &text);
        let mut ast = engine.compile(&text).map_err(|e| {
            Box::new(EvalAltResult::ErrorInModule(
                path.to_string(),
                Box::new(EvalAltResult::ErrorParsing(*e.0, e.1)),
                pos,
            ))
        })?;
        ast.set_source(name.as_str());
        self.sources.closures_of(&ast, &name);
        let mut module = Module::eval_ast_as_new(Scope::new(), &ast, engine)
            .map_err(|e| Box::new(EvalAltResult::ErrorInModule(path.to_string(), e, pos)))?;
        module.set_id(name.as_str());
        let module: Shared<Module> = module.into();
        self.sources.keep_module(&name, &text, module.clone());
        Ok(module)
    }
}

#[cfg(test)]
mod tests {
    /// A bundled module is compiled only when imported: check them all here.
    #[test]
    fn every_stdlib_module_compiles() {
        let sources = std::sync::Arc::new(super::Sources::default());
        let engine = crate::script::engine(None, sources.clone(), crate::script::PrintTo::Stderr);
        for (name, text) in super::STDLIB {
            let ast =
                crate::script::compile(&engine, &format!("stdlib/{name}.rhai"), text, &sources)
                    .unwrap_or_else(|d| panic!("stdlib/{name}.rhai: {}", d.message));
            crate::script::lint::check(&engine, &ast, name)
                .unwrap_or_else(|d| panic!("stdlib/{name}.rhai: {}", d.message));
        }
    }
}
