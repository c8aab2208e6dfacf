//! Integration tests: the real binary against the emulator on loopback.

mod support;

mod accounts;
mod commands;
mod contract;
mod deploy;
mod dives;
mod ducklings;
mod errors;
mod faults;
mod hostile;
mod postgres;
mod repl;
mod rotation;
mod scale;
mod state;
mod stores;
mod tokens;
mod trust;
mod validation;
mod workflows;
