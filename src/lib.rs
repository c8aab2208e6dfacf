//! mdops: a Rhai runtime for MotherDuck service-account administration.
//!
//! Data flows one way: CLI → settings → script engine → bindings → API client → HTTP.

pub mod api;
pub mod app;
pub mod catalog;
pub mod cli;
pub mod duration;
pub mod fsutil;
pub mod lock;
pub mod repl;
pub mod script;
pub mod settings;
pub mod sim;
pub mod sinks;
pub mod state_cmds;
pub mod store;
