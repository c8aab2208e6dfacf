//! Durations and times.

use crate::script::convert::invalid;
use crate::script::convert::RhaiResultOf;
use rhai::plugin::*;
use rhai::{NativeCallContext, INT};

#[export_module]
pub mod api {
    use super::*;

    /// Seconds in a duration such as `"90d"`, `"12h"`, `"1h30m"`, `"2w"` or `"300"`
    /// (a leading `-` makes it negative).
    #[rhai_fn(name = "duration", return_raw)]
    pub fn duration(ctx: NativeCallContext, text: &str) -> RhaiResultOf<INT> {
        crate::duration::parse_seconds(text).map_err(|e| invalid(&ctx, "duration", e))
    }

    /// Renders seconds as a compact duration: `format_duration(90061)` is `"1d1h1m1s"`.
    #[rhai_fn(name = "format_duration")]
    pub fn format_duration(seconds: INT) -> String {
        crate::duration::format_seconds(seconds)
    }

    /// The current time as Unix seconds (UTC). Token maps give `age` and
    /// `expires_in` directly; use `iso_time(now())` for a readable form.
    #[rhai_fn(volatile)]
    pub fn now() -> INT {
        chrono::Utc::now().timestamp()
    }

    /// Unix seconds as an RFC 3339 UTC timestamp, like the API's `created_ts`.
    pub fn iso_time(seconds: INT) -> String {
        chrono::DateTime::from_timestamp(seconds, 0)
            .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_default()
    }

    /// An RFC 3339 timestamp (such as a token's `expire_at`) as Unix seconds.
    #[rhai_fn(return_raw)]
    pub fn parse_time(ctx: NativeCallContext, text: &str) -> RhaiResultOf<INT> {
        chrono::DateTime::parse_from_rfc3339(text)
            .map(|d| d.timestamp())
            .map_err(|_| {
                invalid(
                    &ctx,
                    "time",
                    format!(
                        "{} is not an RFC 3339 timestamp",
                        crate::output::escape(&format!("{text:?}"))
                    ),
                )
            })
    }
}
