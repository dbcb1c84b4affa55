//! The GraphQL API: schema, resolvers, loaders and error mapping. Resolvers
//! speak to the store only through `Store` and the request's loaders.

mod analysis;
mod audit;
mod connection;
mod error;
mod federation;
mod limits;
mod links;
mod loaders;
mod mutation;
mod nodes;
mod partner;
mod query;
mod scalars;
mod subscription;

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, PoisonError};

use async_graphql::parser::{parse_query, types::ExecutableDocument};
use async_graphql::{Request, SDLExportOptions, Schema};
use lru::LruCache;

pub use error::to_gql;
pub use loaders::{Batching, Loaders};
pub use subscription::{ChangeFeed, GraphEvent};

use crate::domain::Caller;
use crate::limits::Limits;
use crate::partner::{Federated, Partners, Report};
use crate::store::{Store, Visible};

pub type PvSchema = Schema<query::QueryRoot, mutation::MutationRoot, subscription::SubscriptionRoot>;

/// Builds the schema over a store with the default limits; committed changes are announced on `feed`.
pub fn schema(store: Store, feed: ChangeFeed) -> PvSchema {
    schema_with(store, feed, &Limits::default())
}

/// Builds the schema over a store under `limits`.
pub fn schema_with(store: Store, feed: ChangeFeed, limits: &Limits) -> PvSchema {
    builder(store, feed, limits).finish()
}

/// The schema's builder, for a server that adds extensions (metrics) of its own.
pub fn builder(
    store: Store,
    feed: ChangeFeed,
    limits: &Limits,
) -> async_graphql::SchemaBuilder<query::QueryRoot, mutation::MutationRoot, subscription::SubscriptionRoot> {
    let builder =
        Schema::build(query::QueryRoot::default(), mutation::MutationRoot::default(), subscription::SubscriptionRoot)
            .data(store.clone())
            .data(Unfiltered(store))
            // A request that brings no caller of its own is anonymous.
            .data(Caller::Anonymous)
            .data(feed)
            .data(limits.clone())
            .extension(error::ErrorCodes)
            .extension(partner::PartnerReport)
            // After ErrorCodes, so that limit refusals get their own code first.
            .extension(limits::CostLimits(std::sync::Arc::new(limits.clone())))
            .limit_depth(limits.max_depth.into())
            .limit_complexity(limits.max_complexity as usize);
    if limits.introspection { builder } else { builder.disable_introspection() }
}

/// The whole store, unfiltered, for what the server itself must see (e.g. whether each end
/// of a changed relationship is visible to each subscriber).
#[derive(Clone)]
pub struct Unfiltered(pub Store);

/// What one request or WebSocket session needs: its caller, the store as that caller sees it
/// (`store::Visible`, which shadows the schema's unfiltered store), and its own loaders over
/// that view, so caches never outlive it nor cross callers.
///
/// A WebSocket session reads this instance's data only: a session outlives any deadline that
/// partner calls could be held to.
pub fn caller_data(store: &Store, caller: Caller) -> async_graphql::Data {
    let visible: Store = std::sync::Arc::new(Visible::new(store.clone(), caller.clone()));
    let mut data = async_graphql::Data::default();
    // A subscription's events are not run through a `Batching`: its loaders start at once.
    data.insert(Loaders::new(&visible, &Batching::default()));
    data.insert(visible);
    data.insert(caller);
    data
}

/// Attaches what one request needs (see `caller_data`). With partners, the request's view
/// reaches into them (`partner::Federated`), and notes what it could not reach in a `Report`.
/// Its loaders batch every round of a poll when the request runs through `batching`.
pub fn prepare(
    request: Request,
    store: &Store,
    caller: Caller,
    partners: Option<&Arc<Partners>>,
    batching: &Batching,
) -> Request {
    // Without partners a request needs neither the view across them nor a report.
    let partners = partners.filter(|p| !p.is_empty()).map(|p| (p, Report::default()));
    let base: Store = match &partners {
        Some((partners, report)) => Arc::new(Federated::new(store.clone(), Arc::clone(partners), report.clone())),
        None => store.clone(),
    };
    let visible: Store = Arc::new(Visible::new(base, caller.clone()));
    let request = request.data(Loaders::new(&visible, batching)).data(visible).data(caller);
    match partners {
        Some((partners, report)) => request.data(report).data(crate::domain::PartnerOrgs(partners.organisations())),
        None => request,
    }
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
    bare_schema().sdl()
}

/// The Apollo Federation v2 subgraph SDL, as `_service { sdl }` serves it and
/// as checked into `schema/subgraph.graphql`.
pub fn subgraph_sdl() -> String {
    bare_schema().sdl_with_options(SDLExportOptions::new().federation().compose_directive())
}

fn bare_schema() -> PvSchema {
    Schema::build(query::QueryRoot::default(), mutation::MutationRoot::default(), subscription::SubscriptionRoot)
        .finish()
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
