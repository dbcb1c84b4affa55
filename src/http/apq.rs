//! Persisted queries: Apollo's automatic persisted queries (a client sends the
//! SHA-256 of a query and sends the text only when the server does not know
//! it yet), and an optional list of queries fixed at start-up, which
//! `--persisted-only` turns into the only queries the server accepts.
//!
//! Our own small resolver rather than async-graphql's extension: it has no
//! `extensions.code` on its errors and runs after the HTTP layer has decided
//! whether a GET may run the query, which the resolved text must decide.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::path::Path;
use std::sync::Mutex;

use anyhow::Context as _;
use lru::LruCache;
use serde_json::{Map, Value};

use super::graphql_http::RawRequest;

/// How many automatically persisted queries are remembered; the least recently used go first.
const CACHE_ENTRIES: usize = 1024;
/// Longer queries run but are not remembered, so that the cache's size stays bounded.
const LONGEST_CACHED: usize = 64 * 1024;

/// The queries a server knows by hash.
pub struct PersistedQueries {
    cache: Mutex<LruCache<String, String>>,
    listed: HashMap<String, String>,
    only_listed: bool,
}

impl Default for PersistedQueries {
    fn default() -> Self {
        PersistedQueries::new(HashMap::new(), false)
    }
}

/// Why a request's query cannot be resolved.
#[derive(Debug, PartialEq, Eq)]
pub struct Refusal {
    pub code: &'static str,
    pub message: String,
}

fn refuse(code: &'static str, message: impl Into<String>) -> Refusal {
    Refusal { code, message: message.into() }
}

/// The lowercase hex SHA-256 of a query, as Apollo's clients compute it.
pub use crate::auth::sha256_hex;

impl PersistedQueries {
    pub fn new(listed: HashMap<String, String>, only_listed: bool) -> PersistedQueries {
        let entries = NonZeroUsize::new(CACHE_ENTRIES).expect("a positive size");
        PersistedQueries { cache: Mutex::new(LruCache::new(entries)), listed, only_listed }
    }

    /// Reads a list of persisted queries: Apollo's persisted query manifest
    /// (`{"format": "apollo-persisted-query-manifest", "operations": [{"id", "body", …}]}`) or a
    /// plain JSON object from hash to query. Every hash must be the SHA-256 of its query.
    pub fn load(path: &Path, only_listed: bool) -> anyhow::Result<PersistedQueries> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        let listed =
            parse_manifest(&text).with_context(|| format!("{} is not a persisted query list", path.display()))?;
        Ok(PersistedQueries::new(listed, only_listed))
    }

    /// How many queries the list holds.
    pub fn listed(&self) -> usize {
        self.listed.len()
    }

    /// The query text a request stands for.
    pub fn resolve(&self, request: &RawRequest) -> Result<String, Refusal> {
        let hash = persisted_hash(request.extensions.as_ref())?;
        match (&request.query, hash) {
            (Some(query), Some(hash)) => {
                if sha256_hex(query) != hash {
                    return Err(refuse(
                        "PERSISTED_QUERY_HASH_MISMATCH",
                        "the sha256Hash of extensions.persistedQuery is not the SHA-256 of the query",
                    ));
                }
                if self.only_listed {
                    return self.listed_or_refused(&hash).map(str::to_owned);
                }
                if query.len() <= LONGEST_CACHED {
                    self.cache.lock().expect("the cache lock").put(hash, query.clone());
                }
                Ok(query.clone())
            }
            (None, Some(hash)) => {
                if let Some(query) = self.listed.get(&hash) {
                    return Ok(query.clone());
                }
                let cached = if self.only_listed {
                    None
                } else {
                    self.cache.lock().expect("the cache lock").get(&hash).cloned()
                };
                cached.ok_or_else(|| refuse("PERSISTED_QUERY_NOT_FOUND", "PersistedQueryNotFound"))
            }
            (Some(query), None) if self.only_listed => self.listed_or_refused(&sha256_hex(query)).map(str::to_owned),
            (Some(query), None) => Ok(query.clone()),
            (None, None) => Err(refuse("BAD_REQUEST", "the request has no query")),
        }
    }

    fn listed_or_refused(&self, hash: &str) -> Result<&str, Refusal> {
        self.listed.get(hash).map(String::as_str).ok_or_else(|| {
            refuse("PERSISTED_QUERY_NOT_ALLOWED", "this server runs only the queries of its persisted query list")
        })
    }
}

/// The hash of `extensions.persistedQuery`, lowercased, when the request carries one.
fn persisted_hash(extensions: Option<&Map<String, Value>>) -> Result<Option<String>, Refusal> {
    let Some(persisted) = extensions.and_then(|e| e.get("persistedQuery")) else {
        return Ok(None);
    };
    let version = persisted.get("version").and_then(Value::as_i64);
    if version != Some(1) {
        return Err(refuse("PERSISTED_QUERY_NOT_SUPPORTED", "only version 1 of persisted queries is supported"));
    }
    match persisted.get("sha256Hash").and_then(Value::as_str) {
        Some(hash) if hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Ok(Some(hash.to_ascii_lowercase()))
        }
        _ => Err(refuse("BAD_REQUEST", "extensions.persistedQuery.sha256Hash must be 64 hexadecimal digits")),
    }
}

fn parse_manifest(text: &str) -> anyhow::Result<HashMap<String, String>> {
    let value: Value = serde_json::from_str(text)?;
    let pairs: Vec<(String, String)> = match &value {
        Value::Object(fields) if fields.contains_key("operations") => {
            let operations = fields["operations"].as_array().context("`operations` must be a list")?;
            operations
                .iter()
                .map(|op| {
                    let id = op.get("id").and_then(Value::as_str).context("an operation has no string `id`")?;
                    let body = op.get("body").and_then(Value::as_str).context("an operation has no string `body`")?;
                    Ok((id.to_owned(), body.to_owned()))
                })
                .collect::<anyhow::Result<_>>()?
        }
        Value::Object(fields) => fields
            .iter()
            .map(|(hash, query)| {
                let query = query.as_str().with_context(|| format!("the query of {hash} is not a string"))?;
                Ok((hash.clone(), query.to_owned()))
            })
            .collect::<anyhow::Result<_>>()?,
        _ => anyhow::bail!("expected a JSON object"),
    };
    pairs
        .into_iter()
        .map(|(hash, query)| {
            let hash = hash.to_ascii_lowercase();
            anyhow::ensure!(sha256_hex(&query) == hash, "{hash} is not the SHA-256 of its query");
            Ok((hash, query))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(query: Option<&str>, hash: Option<&str>) -> RawRequest {
        let extensions = hash.map(|h| {
            let value = serde_json::json!({ "persistedQuery": { "version": 1, "sha256Hash": h } });
            value.as_object().unwrap().clone()
        });
        RawRequest { query: query.map(str::to_owned), extensions, ..RawRequest::default() }
    }

    #[test]
    fn the_hash_is_apollos() {
        // The SHA-256 of "{ __typename }", computed independently (sha256sum).
        assert_eq!(sha256_hex("{ __typename }"), "7f56e67dd21ab3f30d1ff8b7bed08893f0a0db86449836189b361dd1e56ddb4b");
    }

    #[test]
    fn a_registered_query_is_found_by_its_hash_and_a_wrong_hash_is_refused() {
        let queries = PersistedQueries::default();
        let query = "{ __typename }";
        let hash = sha256_hex(query);
        assert_eq!(queries.resolve(&request(None, Some(&hash))).unwrap_err().code, "PERSISTED_QUERY_NOT_FOUND");
        assert_eq!(queries.resolve(&request(Some(query), Some(&hash))).unwrap(), query);
        assert_eq!(queries.resolve(&request(None, Some(&hash))).unwrap(), query);
        let wrong = sha256_hex("{ other }");
        assert_eq!(
            queries.resolve(&request(Some(query), Some(&wrong))).unwrap_err().code,
            "PERSISTED_QUERY_HASH_MISMATCH"
        );
    }

    #[test]
    fn a_manifest_whose_hash_does_not_match_is_rejected() {
        let good = format!(r#"{{"{}": "{{ __typename }}"}}"#, sha256_hex("{ __typename }"));
        assert_eq!(parse_manifest(&good).unwrap().len(), 1);
        let bad = format!(r#"{{"{}": "{{ other }}"}}"#, sha256_hex("{ __typename }"));
        assert!(parse_manifest(&bad).is_err());
    }
}
