//! What script functions run against: the run's [`Runtime`] (options, API,
//! state, the invariants), and the compiled program, which the worker
//! engines of `parallel()` need to call the script's functions.

use crate::runtime::Runtime;
use std::sync::{Arc, Mutex};

/// The script being run, as worker engines need it: its functions, and the
/// modules it imported at top level (alias, path), which workers import too.
#[derive(Clone)]
pub struct Program {
    pub ast: Arc<rhai::AST>,
    pub imports: Vec<(String, String)>,
    pub sources: Arc<crate::script::diagnostics::Sources>,
    pub print_to: crate::script::PrintTo,
    /// Worker engines a `parallel()` call finished with, for the next one.
    pub engines: Arc<Engines>,
}

/// Engines set up for one program (its bindings and imports registered), kept
/// between `parallel()` calls: setting one up costs more than many items.
#[derive(Default)]
pub struct Engines(Mutex<Vec<rhai::Engine>>);

impl Engines {
    pub fn take(&self) -> Option<rhai::Engine> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).pop()
    }
    pub fn give_back(&self, engine: rhai::Engine) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(engine);
    }
}

pub struct Host {
    pub rt: Arc<Runtime>,
    program: Mutex<Option<Program>>,
}

impl std::ops::Deref for Host {
    type Target = Runtime;
    fn deref(&self) -> &Runtime {
        &self.rt
    }
}

impl Host {
    pub fn new(rt: Arc<Runtime>) -> Arc<Host> {
        Arc::new(Host {
            rt,
            program: Mutex::new(None),
        })
    }

    pub fn set_program(&self, program: Program) {
        *self.program.lock().unwrap_or_else(|e| e.into_inner()) = Some(program);
    }

    pub fn program(&self) -> Option<Program> {
        self.program
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}
