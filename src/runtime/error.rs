//! How a runtime operation fails. Bindings turn these into script errors; the
//! run command turns what nothing caught into an exit code (`failure`).

use crate::api::ApiError;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// The API call failed, or was refused before sending (validation).
    #[error("{0}")]
    Api(Box<ApiError>),
    /// The local state (inventory, journal, audit) could not be used.
    #[error("{0}")]
    State(String),
    /// A destructive step was not confirmed; nothing was done.
    #[error("{0}")]
    Confirmation(String),
    /// A secret could not be delivered (or the delivery was refused).
    #[error("{0}")]
    Sink(String),
    /// The script was called wrongly (a selector that selects nothing): exit 2.
    #[error("{0}")]
    Usage(String),
    /// The run must stop now, whatever the script would do next.
    #[error("{0}")]
    Stop(Stop),
}

/// Why a run stops before its script ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// `--max-writes N` reached: the next write would have been number N+1.
    MaxWrites(u64),
}

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stop::MaxWrites(n) => write!(
                f,
                "stopped before write {} (--max-writes {n}): nothing more was changed",
                n + 1
            ),
        }
    }
}

impl From<ApiError> for Error {
    fn from(e: ApiError) -> Self {
        Error::Api(Box::new(e))
    }
}

impl Error {
    pub fn invalid(field: &str, message: impl Into<String>) -> Error {
        ApiError::Validation {
            field: field.to_string(),
            message: message.into(),
        }
        .into()
    }

    pub fn state(e: impl std::fmt::Display) -> Error {
        Error::State(format!("the local state is unavailable: {e}"))
    }
}

impl From<crate::api::rules::Violation> for Error {
    fn from(v: crate::api::rules::Violation) -> Self {
        Error::from(ApiError::from(v))
    }
}
