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
    /// Where in a script it happened: file, line, column.
    pub location: Option<(String, usize, usize)>,
    /// The message alone, when `message` is a rendering with more around it
    /// (a source excerpt, a list): what `--output json` reports.
    pub plain: Option<String>,
}

impl Failure {
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        Self {
            code: kind.code(),
            message: format!("error: {}\n", message.into()),
            location: None,
            plain: None,
        }
    }

    /// A text rendered elsewhere (a diagnostic with its source line and caret).
    pub fn rendered(kind: Kind, text: String) -> Self {
        Self {
            code: kind.code(),
            message: text,
            location: None,
            plain: None,
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

impl Failure {
    /// The failure as the `error` member of a JSON document.
    pub fn to_json(&self) -> serde_json::Value {
        let message = match &self.plain {
            Some(p) => p.clone(),
            None => self
                .message
                .trim_end()
                .strip_prefix("error: ")
                .unwrap_or(self.message.trim_end())
                .to_string(),
        };
        crate::output::error_value(
            &message,
            self.code,
            kind_name(self.code),
            self.location.as_ref().map(|(f, l, c)| (f.as_str(), *l, *c)),
        )
    }

    /// This failure's `--output json` document.
    pub fn envelope(&self, dry_run: bool) -> crate::output::Envelope {
        crate::output::Envelope {
            dry_run,
            error: self.to_json(),
            ..Default::default()
        }
    }
}

/// The name of an exit code's kind, as JSON documents give it.
pub fn kind_name(code: i32) -> &'static str {
    match code {
        exit::OK => "ok",
        exit::SCRIPT => "script",
        exit::USAGE => "usage",
        exit::AUTH => "auth",
        exit::PARTIAL => "partial",
        exit::LOCKED => "locked",
        exit::UNAVAILABLE => "unavailable",
        exit::INTERRUPTED => "interrupted",
        exit::TERMINATED => "terminated",
        _ => "exit",
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
