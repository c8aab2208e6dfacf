//! Who a bearer token speaks for, and what each principal may do: admins
//! everything; a user their own tokens (list with any token type, create with
//! a read/write one).

use super::errors::SimError;
use crate::api::TokenType;

const ADMIN_ONLY: &str = "minimum role org_admin is required";

/// Who a bearer token speaks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Principal {
    Admin,
    /// A user's own token (service account or member), by lower-cased username.
    User {
        key: String,
        token_type: TokenType,
    },
}

pub fn require_admin(who: &Principal) -> Result<(), SimError> {
    match who {
        Principal::Admin => Ok(()),
        Principal::User { .. } => Err(SimError::forbidden(ADMIN_ONLY)),
    }
}

/// A user may list (any token type) and create (read/write token) their own tokens.
pub fn require_self_or_admin(who: &Principal, username: &str, read: bool) -> Result<(), SimError> {
    match who {
        Principal::Admin => Ok(()),
        Principal::User { key, token_type }
            if *key == username.to_lowercase() && (read || *token_type == TokenType::ReadWrite) =>
        {
            Ok(())
        }
        Principal::User { .. } => Err(SimError::forbidden(ADMIN_ONLY)),
    }
}
