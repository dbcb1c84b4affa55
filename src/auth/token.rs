//! API tokens: `pvg_<id>_<secret>`, with a 64-bit public id (for lists and
//! revocation) and a 256-bit secret. Only the SHA-256 of the whole token is
//! kept: a random token of that strength needs no slow password hash.

use base64::Engine as _;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::{hex, random_bytes};
use crate::domain::Role;
use crate::store::ApiToken;

/// How every API token starts, so that it is recognisable (and findable by secret scanners).
pub const TOKEN_PREFIX: &str = "pvg_";

/// Lower-case hex SHA-256 of a token.
pub fn hash_token(token: &str) -> String {
    sha256_hex(token)
}

/// Lower-case hex SHA-256 of a text, written by the digest's own `LowerHex` in one go: a
/// `format!` per byte was 2 % of a small query's instructions, since every request's token is
/// hashed.
pub fn sha256_hex(text: &str) -> String {
    format!("{:x}", Sha256::digest(text.as_bytes()))
}

/// A new token: the secret to show once, and what to store.
pub struct IssuedToken {
    pub token: String,
    pub stored: ApiToken,
}

pub fn issue_token(organisation: &str, role: Role, now: DateTime<Utc>) -> IssuedToken {
    let id = hex(&random_bytes::<8>());
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<32>());
    let token = format!("{TOKEN_PREFIX}{id}_{secret}");
    let stored = ApiToken {
        id,
        hash: hash_token(&token),
        organisation: organisation.to_owned(),
        role,
        created_at: now,
        revoked_at: None,
    };
    IssuedToken { token, stored }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_distinct_prefixed_and_hashed() {
        let a = issue_token("kc", Role::Editor, crate::domain::now());
        let b = issue_token("kc", Role::Editor, crate::domain::now());
        assert_ne!(a.token, b.token);
        assert!(a.token.starts_with(&format!("pvg_{}_", a.stored.id)));
        assert!(a.token.len() > 60, "{}", a.token);
        assert_eq!(a.stored.hash, hash_token(&a.token));
        assert_eq!(a.stored.hash.len(), 64);
        assert!(!a.stored.hash.contains(&a.token));
    }
}
