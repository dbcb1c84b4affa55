//! The GraphQL API: schema, resolvers, loaders and error mapping. Resolvers
//! speak to the store only through `Store` and the request's loaders.

mod analysis;
mod connection;
mod error;
mod links;
mod loaders;
mod mutation;
mod nodes;
mod query;
mod scalars;
mod subscription;

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, PoisonError};

use async_graphql::parser::{parse_query, types::ExecutableDocument};
use async_graphql::{Request, Schema};
use lru::LruCache;

pub use error::to_gql;
pub use loaders::Loaders;
pub use subscription::{ChangeFeed, GraphEvent};

use crate::store::Store;

pub type PvSchema = Schema<query::QueryRoot, mutation::MutationRoot, subscription::SubscriptionRoot>;

/// Builds the schema over a store; committed changes are announced on `feed`.
pub fn schema(store: Store, feed: ChangeFeed) -> PvSchema {
    Schema::build(query::QueryRoot::default(), mutation::MutationRoot::default(), subscription::SubscriptionRoot)
        .data(store)
        .data(feed)
        .extension(error::ErrorCodes)
        .limit_depth(16)
        .limit_complexity(5_000)
        .finish()
}

/// Attaches what one request needs: its own loaders, so caches never outlive it.
pub fn prepare(request: Request, store: &Store) -> Request {
    request.data(Loaders::new(store))
}

/// Parsed query documents by their text. Parsing was more than half of the
/// instructions a small query cost (callgrind, see BENCHMARKS.md), and clients
/// send the same few texts again and again with other variables, so each text
/// is parsed once. Validation still runs on every request.
pub struct ParsedQueries(Mutex<LruCache<String, Arc<ExecutableDocument>>>);

impl ParsedQueries {
    /// How many texts are kept, the least recently used leaving first.
    const CAPACITY: usize = 512;
    /// Longer texts are parsed every time, so that the cache stays small.
    const LONGEST: usize = 16 * 1024;

    /// Gives the request its parsed document, parsing and keeping it on a miss. A
    /// text that does not parse is left to execution, which reports the error as ever.
    pub fn attach(&self, mut request: Request) -> Request {
        if request.query.len() > Self::LONGEST {
            return request;
        }
        let cached = self.0.lock().unwrap_or_else(PoisonError::into_inner).get(&request.query).cloned();
        let document = match cached {
            Some(document) => document,
            None => match parse_query(&request.query) {
                Ok(document) => {
                    let document = Arc::new(document);
                    let mut cache = self.0.lock().unwrap_or_else(PoisonError::into_inner);
                    cache.put(request.query.clone(), document.clone());
                    document
                }
                Err(_) => return request,
            },
        };
        request.set_parsed_query(ExecutableDocument::clone(&document));
        request
    }
}

impl Default for ParsedQueries {
    fn default() -> Self {
        let capacity = NonZeroUsize::new(Self::CAPACITY).unwrap_or(NonZeroUsize::MIN);
        ParsedQueries(Mutex::new(LruCache::new(capacity)))
    }
}

/// The schema's SDL, as checked into `schema/schema.graphql`.
pub fn sdl() -> String {
    Schema::build(query::QueryRoot::default(), mutation::MutationRoot::default(), subscription::SubscriptionRoot)
        .finish()
        .sdl()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cached(queries: &ParsedQueries) -> usize {
        queries.0.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    #[test]
    fn a_query_text_is_parsed_once_and_a_broken_one_is_left_to_execution() {
        let queries = ParsedQueries::default();
        let text = "query($id: ID!) { node(id: $id) { id } }";
        let mut first = queries.attach(Request::new(text));
        let mut second = queries.attach(Request::new(text));
        assert_eq!(cached(&queries), 1);
        let (first, second) =
            (first.parsed_query().map(|d| format!("{d:?}")), second.parsed_query().map(|d| format!("{d:?}")));
        assert_eq!(first.ok(), second.ok());

        let mut broken = queries.attach(Request::new("{ node(id: "));
        assert_eq!(cached(&queries), 1);
        assert!(broken.parsed_query().is_err(), "execution still reports the parse error");
    }
}
