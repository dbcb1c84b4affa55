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
mod query;
mod scalars;
mod subscription;

use async_graphql::{Request, SDLExportOptions, Schema};

pub use error::to_gql;
pub use loaders::Loaders;
pub use subscription::{ChangeFeed, GraphEvent};

use crate::domain::Caller;
use crate::limits::Limits;
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
pub fn caller_data(store: &Store, caller: Caller) -> async_graphql::Data {
    let visible: Store = std::sync::Arc::new(Visible::new(store.clone(), caller.clone()));
    let mut data = async_graphql::Data::default();
    data.insert(Loaders::new(&visible));
    data.insert(visible);
    data.insert(caller);
    data
}

/// Attaches what one request needs (see `caller_data`).
pub fn prepare(request: Request, store: &Store, caller: Caller) -> Request {
    let visible: Store = std::sync::Arc::new(Visible::new(store.clone(), caller.clone()));
    request.data(Loaders::new(&visible)).data(visible).data(caller)
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
