//! The commands, one file each. Each takes validated settings and its own
//! arguments and returns an exit code or a [`Failure`](crate::failure::Failure).

pub mod check;
pub mod doc;
pub mod run;
pub mod sim;
pub mod state;
pub mod summary;
pub mod whoami;
