//! How a command ends: the exit codes cron depends on, and `Failure`, a
//! failure already worded for the user. Every conversion from a lower layer's
//! error (API, store, script diagnostic) into an exit code lives here.

use crate::api::ApiError;

/// The process exit codes (README, "Exit codes").
pub mod exit {
    pub const OK: i32 = 0;
    /// Script error: syntax, runtime, uncaught throw, failed API call not caught.
    pub const SCRIPT: i32 = 1;
    /// Usage or configuration: bad flag, missing token, bad URL, bad `--arg`.
    pub const USAGE: i32 = 2;
    /// The API refused the credentials (401/403).
    pub const AUTH: i32 = 3;
    /// A bulk run finished but some items failed (or `--max-writes` stopped it).
    pub const PARTIAL: i32 = 4;
    /// Another run holds the lock for this script.
    pub const LOCKED: i32 = 5;
    /// The API could not be reached, or kept failing after retries.
    pub const UNAVAILABLE: i32 = 6;
    /// Interrupted by Ctrl-C (SIGINT).
    pub const INTERRUPTED: i32 = 130;
    /// Terminated by SIGTERM, handled like Ctrl-C.
    pub const TERMINATED: i32 = 143;
}

/// What kind of failure ended a run: decides the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Script,
    Usage,
    Auth,
    Partial,
    Locked,
    Unavailable,
    Interrupted,
    Terminated,
}

impl Kind {
    pub fn code(self) -> i32 {
        match self {
            Kind::Script => exit::SCRIPT,
            Kind::Usage => exit::USAGE,
            Kind::Auth => exit::AUTH,
            Kind::Partial => exit::PARTIAL,
            Kind::Locked => exit::LOCKED,
            Kind::Unavailable => exit::UNAVAILABLE,
            Kind::Interrupted => exit::INTERRUPTED,
            Kind::Terminated => exit::TERMINATED,
        }
    }

    /// The kind an API failure falls under when nothing caught it.
    pub fn of_api(e: &ApiError) -> Kind {
        if e.is_auth() {
            Kind::Auth
        } else if e.is_unavailable() {
            Kind::Unavailable
        } else if matches!(e, ApiError::Cancelled) {
            Kind::Interrupted
        } else {
            Kind::Script
        }
    }
}

/// A failure already worded for the user (the whole text, newline included),
/// with its exit code.
#[derive(Debug)]
pub struct Failure {
    pub code: i32,
    pub message: String,
}

impl Failure {
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        Self {
            code: kind.code(),
            message: format!("error: {}\n", message.into()),
        }
    }

    /// A text rendered elsewhere (a diagnostic with its source line and caret).
    pub fn rendered(kind: Kind, text: String) -> Self {
        Self {
            code: kind.code(),
            message: text,
        }
    }

    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(Kind::Usage, message)
    }

    pub fn script(message: impl Into<String>) -> Self {
        Self::new(Kind::Script, message)
    }

    /// The local state could not be used.
    pub fn state(e: impl std::fmt::Display) -> Self {
        Self::new(Kind::Script, format!("the local state is unavailable: {e}"))
    }

    pub fn api(e: &ApiError) -> Self {
        Self::new(Kind::of_api(e), e.to_string())
    }
}

impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Self {
        Failure::api(&e)
    }
}

impl From<crate::store::StoreError> for Failure {
    fn from(e: crate::store::StoreError) -> Self {
        Failure::script(e.0)
    }
}
