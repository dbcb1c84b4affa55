//! Authentication: turns the bearer token of a request into a `Caller`. Two
//! kinds of token are accepted: API tokens issued by `pvgraph token create`
//! (random, recognisable by their `pvg_` prefix, stored only as a SHA-256
//! hash) and JWTs signed by a configured key (HS256 secret or RS256 public
//! key), so that a government can plug in its own identity provider.

pub mod cli;
mod jwt;
mod lookups;
mod token;

pub use jwt::{Claims, JwtKey, JwtSettings};
pub use token::{IssuedToken, TOKEN_PREFIX, hash_token, issue_token, sha256_hex};

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

pub use crate::domain::Confirmation;
use crate::domain::{Caller, Error, Member, Result};
use crate::store::{ApiToken, Store};
use lookups::Lookups;

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
    tokens: ApiTokens,
    jwt: Option<JwtSettings>,
    /// Whether a request without a token is served (as anonymous, PUBLIC only).
    pub anonymous: bool,
    /// How many requests on known API tokens are being served (`Served`).
    serving: Arc<AtomicUsize>,
}

/// Asks the store about API tokens.
#[derive(Clone)]
struct ApiTokens {
    store: Store,
    /// Tokens this server has confirmed before, by hash, with whom they named and the line of
    /// their lookups. A token's organisation and role are fixed when it is issued; only its
    /// revocation can change, and every request is still confirmed by a lookup that began after
    /// it arrived (see `Authenticator::admit`).
    known: Arc<Mutex<HashMap<String, Known>>>,
}

/// A token this server confirmed before.
#[derive(Clone)]
struct Known {
    member: Member,
    lookups: Lookups,
}

/// How many confirmed API tokens `Authenticator` remembers; past that it starts again.
const KNOWN_TOKENS: usize = 4_096;

/// A request's caller as far as it is known when the request arrives.
pub struct Admitted {
    pub caller: Caller,
    /// `None` when `caller` is settled. Otherwise `caller` is what the API token named when it
    /// was last confirmed, and the request may be read meanwhile; nothing may be written, and no
    /// answer sent, before this resolves to the same caller.
    pub confirmation: Option<Confirmation>,
    /// Held while a request on an API token this server confirmed before is served (dropped
    /// with the `Admitted`, or with whatever is left of it).
    pub served: Option<Served>,
}

impl Admitted {
    fn settled(caller: Caller) -> Admitted {
        Admitted { caller, confirmation: None, served: None }
    }
}

/// One of the requests on known API tokens being served (`Authenticator::admit`).
pub struct Served(Arc<AtomicUsize>);

impl Served {
    /// Counts a request in; says whether it is the only one being served.
    fn begin(serving: &Arc<AtomicUsize>) -> (Served, bool) {
        let before = serving.fetch_add(1, Ordering::Relaxed);
        (Served(Arc::clone(serving)), before == 0)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Authenticator {
    /// API tokens only; anonymous readers allowed.
    pub fn new(store: Store) -> Authenticator {
        Authenticator {
            tokens: ApiTokens { store, known: Arc::default() },
            jwt: None,
            anonymous: true,
            serving: Arc::default(),
        }
    }

    /// Also accepts JWTs checked with these settings.
    pub fn with_jwt(mut self, jwt: JwtSettings) -> Authenticator {
        self.jwt = Some(jwt);
        self
    }

    /// Asks `store` about API tokens from now on; the tokens it confirmed before stay known.
    pub fn asking(mut self, store: Store) -> Authenticator {
        self.tokens.store = store;
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
        match self.bearer(authorization)? {
            Some(token) => self.caller_of_token(token).await,
            None => Ok(Caller::Anonymous),
        }
    }

    /// Like `caller`, without waiting for the store when the request carries an API token this
    /// server confirmed before: the request is admitted as that token's caller, and the store's
    /// answer comes as a confirmation the request runs alongside. A revoked token is so refused
    /// as soon as before; what it saves is the wait for the lookup before the request can begin,
    /// a round trip when the store is a server. Requests with the same token that arrive while
    /// its lookup is on its way share the next lookup (`Lookups`). A request served alone (no
    /// other on a known token under way) is looked up at once instead, where the store can do
    /// that without waiting (`GraphStore::token_by_hash_at_once`: SQLite with a connection
    /// idle), and starts settled: on a quiet server that is quicker than a lookup alongside,
    /// which waits for a trip to another thread, and with nobody to share a lookup with, it
    /// costs the store no more.
    pub async fn admit(&self, authorization: Option<&str>) -> Result<Admitted> {
        let token = match self.bearer(authorization)? {
            Some(token) if token.starts_with(TOKEN_PREFIX) => token,
            Some(token) => return Ok(Admitted::settled(self.caller_of_token(token).await?)),
            None => return Ok(Admitted::settled(Caller::Anonymous)),
        };
        let hash = hash_token(token);
        let known = self.tokens.known.lock().unwrap_or_else(|e| e.into_inner()).get(&hash).cloned();
        let Some(Known { member, lookups }) = known else {
            return Ok(Admitted::settled(self.tokens.caller(hash).await?));
        };
        let (served, alone) = Served::begin(&self.serving);
        if alone && let Some(stored) = self.tokens.store.token_by_hash_at_once(&hash).await {
            let caller = self.tokens.settle(hash, stored)?;
            return Ok(Admitted { caller, confirmation: None, served: Some(served) });
        }
        let tokens = self.tokens.clone();
        let asked = hash.clone();
        let lookup = lookups.join(move || async move { tokens.caller(asked).await.map_err(Arc::new) });
        let confirmation = Some(Confirmation::answered_by(hash, lookup));
        Ok(Admitted { caller: Caller::Member(member), confirmation, served: Some(served) })
    }

    /// The token of an `Authorization` header value; `None` without a header, where anonymous
    /// callers are allowed.
    fn bearer<'a>(&self, authorization: Option<&'a str>) -> Result<Option<&'a str>> {
        let Some(value) = authorization else {
            return if self.anonymous {
                Ok(None)
            } else {
                Err(Error::Unauthenticated("this server needs a token: send Authorization: Bearer <token>".into()))
            };
        };
        match value.trim().split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => {
                Ok(Some(token.trim()))
            }
            _ => Err(Error::Unauthenticated("the Authorization header must be `Bearer <token>`".into())),
        }
    }

    /// The caller a bare token names.
    pub async fn caller_of_token(&self, token: &str) -> Result<Caller> {
        if token.starts_with(TOKEN_PREFIX) {
            return self.tokens.caller(hash_token(token)).await;
        }
        match &self.jwt {
            Some(jwt) => jwt.caller(token).map(Caller::Member),
            None => Err(Error::Unauthenticated(format!(
                "the token is not an API token (they start with {TOKEN_PREFIX}) and this server accepts no JWTs"
            ))),
        }
    }
}

impl ApiTokens {
    /// The caller an API token names, by its hash, asked of the store; remembered when it is
    /// good, forgotten when it is not.
    async fn caller(&self, hash: String) -> Result<Caller> {
        let stored = self.store.token_by_hash(&hash).await;
        self.settle(hash, stored)
    }

    /// The caller a lookup of the token with this hash found, remembered when it is good,
    /// forgotten when it is not.
    fn settle(&self, hash: String, stored: Result<Option<ApiToken>>) -> Result<Caller> {
        let outcome = match stored? {
            None => Err(Error::Unauthenticated("the token is not known".into())),
            Some(t) if t.revoked_at.is_some() => Err(Error::Unauthenticated("the token was revoked".into())),
            Some(t) => Ok(Member { organisation: t.organisation, role: t.role, subject: format!("token:{}", t.id) }),
        };
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        match outcome {
            Ok(member) => {
                if known.len() >= KNOWN_TOKENS && !known.contains_key(&hash) {
                    known.clear();
                }
                // The line stays: a lookup may be waiting in it.
                match known.entry(hash) {
                    Entry::Occupied(mut entry) => entry.get_mut().member = member.clone(),
                    Entry::Vacant(entry) => {
                        entry.insert(Known { member: member.clone(), lookups: Lookups::default() });
                    }
                }
                Ok(Caller::Member(member))
            }
            Err(error) => {
                known.remove(&hash);
                Err(error)
            }
        }
    }
}
