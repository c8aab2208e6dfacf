//! How the emulator misbehaves on purpose: latency, random faults (5xx,
//! 429, dropped and hanging answers), and a load-based rate limit.

use std::time::Duration;

#[derive(Debug, Clone, Default)]
pub struct Behaviour {
    /// Added before every answer.
    pub latency: Duration,
    /// Up to this much more, uniformly at random.
    pub jitter: Duration,
    pub faults: Faults,
    /// Requests per second the server lets through (a token bucket holding a
    /// tenth of a second's worth); beyond it, 429 with `Retry-After`. Models a
    /// gateway that throttles by load.
    pub rate_limit: Option<f64>,
}

/// Failures to inject, each at a rate (0.0 to 1.0) of the requests in scope.
/// Reproducible: the same seed gives the same sequence of decisions.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// 502, 503 or 504 instead of handling the request.
    pub error_rate: f64,
    /// 429 with `Retry-After` instead of handling the request.
    pub throttle_rate: f64,
    /// Handle the request, then drop the connection without an answer: the
    /// client cannot know whether it took effect.
    pub drop_rate: f64,
    /// Handle the request (it is logged at once), then hold the answer for
    /// `hang`: the client's request is in flight although it took effect.
    pub hang_rate: f64,
    pub hang: Duration,
    /// Seconds in the 429's `Retry-After`.
    pub retry_after: u64,
    pub seed: u64,
    /// Only requests that match (`POST /v1/users/*/tokens`, `GET *`); all when absent.
    pub scope: Option<String>,
    /// At most this many faults in all.
    pub limit: Option<usize>,
}

impl Faults {
    pub fn any(&self) -> bool {
        self.error_rate > 0.0
            || self.throttle_rate > 0.0
            || self.drop_rate > 0.0
            || self.hang_rate > 0.0
    }

    pub(super) fn in_scope(&self, method: &str, path: &str) -> bool {
        let Some(scope) = &self.scope else {
            return true;
        };
        let (m, p) = scope.split_once(' ').unwrap_or(("*", scope.as_str()));
        if m != "*" && !m.eq_ignore_ascii_case(method) {
            return false;
        }
        let want: Vec<&str> = p.trim_matches('/').split('/').collect();
        let got: Vec<&str> = path.trim_matches('/').split('/').collect();
        if want == ["*"] {
            return true;
        }
        want.len() == got.len() && want.iter().zip(&got).all(|(w, g)| *w == "*" || w == g)
    }
}

/// What the fault dice said for one request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Fault {
    None,
    Error(u16),
    Throttle,
    Drop,
    Hang,
}

/// The rate limit's burst: a tenth of a second's worth, at least one.
pub(super) fn burst_of(rps: f64) -> f64 {
    (rps / 10.0).max(1.0)
}
