//! mdops: a Rhai runtime for MotherDuck service-account administration.
//!
//! Data flows one way: cli → settings → context → script engine → bindings
//! → runtime → api client / store / sinks. See ARCHITECTURE.md.

pub mod api;
pub mod app;
pub mod catalog;
pub mod cli;
pub mod commands;
pub mod context;
pub mod duration;
pub mod failure;
pub mod fsutil;
pub mod glob;
pub mod lock;
pub mod output;
pub mod process;
pub mod prompt;
pub mod redact;
pub mod repl;
pub mod runtime;
pub mod script;
pub mod secret;
pub mod settings;
pub mod sim;
pub mod sinks;
pub mod store;
