//! Integration tests: the real binary against the emulator on loopback.

mod support;

mod accounts;
mod commands;
mod contract;
mod dives;
mod ducklings;
mod errors;
mod faults;
mod hostile;
mod repl;
mod rotation;
mod scale;
mod state;
mod tokens;
mod trust;
mod validation;
mod workflows;
