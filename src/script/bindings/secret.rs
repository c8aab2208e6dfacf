//! The `Secret` type: tokens and sessions that print redacted.

use rhai::plugin::*;

#[export_module]
pub mod api {
    use crate::api::SecretString;
    use rhai::NativeCallContext;

    /// Redacted text form: `<secret 1a2b3c4d5e6f>` (the fingerprint, never the value).
    #[rhai_fn(global, name = "to_string", pure)]
    pub fn to_string(secret: &mut SecretString) -> String {
        secret.redacted()
    }

    /// Same as `to_string`: debug output never shows the value either.
    #[rhai_fn(global, name = "to_debug", pure)]
    pub fn to_debug(secret: &mut SecretString) -> String {
        secret.redacted()
    }

    /// The secret's value, explicitly. Whatever you do with it is yours to keep safe:
    /// a token revealed this way counts as delivered (the run will not revoke it).
    #[rhai_fn(global, pure, return_raw)]
    pub fn reveal(
        ctx: NativeCallContext,
        secret: &mut SecretString,
    ) -> crate::script::convert::RhaiResultOf<String> {
        match crate::script::bindings::host(&ctx) {
            Ok(h) => crate::script::convert::check(&ctx, h.reveal(secret))?,
            Err(_) => crate::redact::allow(secret.expose()),
        }
        Ok(secret.expose().to_string())
    }

    /// A short, stable, non-reversible id of the value (12 hex digits of its SHA-256),
    /// safe to log and compare.
    #[rhai_fn(global, pure)]
    pub fn fingerprint(secret: &mut SecretString) -> String {
        secret.fingerprint()
    }

    /// Two secrets are equal when their values are.
    #[rhai_fn(global, name = "==", pure)]
    pub fn eq(a: &mut SecretString, b: SecretString) -> bool {
        *a == b
    }

    /// Two secrets differ when their values do.
    #[rhai_fn(global, name = "!=", pure)]
    pub fn ne(a: &mut SecretString, b: SecretString) -> bool {
        *a != b
    }
}
