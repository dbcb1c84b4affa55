//! Authentication: turns the bearer token of a request into a `Caller`. Two
//! kinds of token are accepted: API tokens issued by `pvgraph token create`
//! (random, recognisable by their `pvg_` prefix, stored only as a SHA-256
//! hash) and JWTs signed by a configured key (HS256 secret or RS256 public
//! key), so that a government can plug in its own identity provider.

pub mod cli;
mod jwt;
mod token;

pub use jwt::{Claims, JwtKey, JwtSettings};
pub use token::{IssuedToken, TOKEN_PREFIX, hash_token, issue_token, sha256_hex};

use crate::domain::{Caller, Error, Member, Result};
use crate::store::Store;

/// Random bytes from the operating system's generator.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    // The OS generator failing leaves no safe way on: tokens must be unguessable.
    getrandom::fill(&mut bytes).expect("the operating system's random generator answers");
    bytes
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A random 128-bit id in hex, e.g. for audit entries.
pub fn random_id() -> String {
    hex(&random_bytes::<16>())
}

/// Decides who a request's caller is.
#[derive(Clone)]
pub struct Authenticator {
    store: Store,
    jwt: Option<JwtSettings>,
    /// Whether a request without a token is served (as anonymous, PUBLIC only).
    pub anonymous: bool,
}

impl Authenticator {
    /// API tokens only; anonymous readers allowed.
    pub fn new(store: Store) -> Authenticator {
        Authenticator { store, jwt: None, anonymous: true }
    }

    /// Also accepts JWTs checked with these settings.
    pub fn with_jwt(mut self, jwt: JwtSettings) -> Authenticator {
        self.jwt = Some(jwt);
        self
    }

    /// Refuses requests without a token when `anonymous` is false.
    pub fn with_anonymous(mut self, anonymous: bool) -> Authenticator {
        self.anonymous = anonymous;
        self
    }

    /// The caller an `Authorization` header value names (`Bearer <token>`), or, without one,
    /// the anonymous caller where that is allowed. Every refusal is `Error::Unauthenticated`.
    pub async fn caller(&self, authorization: Option<&str>) -> Result<Caller> {
        let Some(value) = authorization else {
            return if self.anonymous {
                Ok(Caller::Anonymous)
            } else {
                Err(Error::Unauthenticated("this server needs a token: send Authorization: Bearer <token>".into()))
            };
        };
        let token = match value.trim().split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => token.trim(),
            _ => return Err(Error::Unauthenticated("the Authorization header must be `Bearer <token>`".into())),
        };
        self.caller_of_token(token).await
    }

    /// The caller a bare token names.
    pub async fn caller_of_token(&self, token: &str) -> Result<Caller> {
        if token.starts_with(TOKEN_PREFIX) {
            let stored = self.store.token_by_hash(&hash_token(token)).await?;
            return match stored {
                None => Err(Error::Unauthenticated("the token is not known".into())),
                Some(t) if t.revoked_at.is_some() => Err(Error::Unauthenticated("the token was revoked".into())),
                Some(t) => Ok(Caller::Member(Member {
                    organisation: t.organisation,
                    role: t.role,
                    subject: format!("token:{}", t.id),
                })),
            };
        }
        match &self.jwt {
            Some(jwt) => jwt.caller(token).map(Caller::Member),
            None => Err(Error::Unauthenticated(format!(
                "the token is not an API token (they start with {TOKEN_PREFIX}) and this server accepts no JWTs"
            ))),
        }
    }
}
