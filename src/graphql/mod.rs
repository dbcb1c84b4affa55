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

use async_graphql::{Request, Schema};

pub use error::to_gql;
pub use loaders::Loaders;
pub use subscription::{ChangeFeed, GraphEvent};

use crate::store::Store;

pub type PvSchema = Schema<query::QueryRoot, mutation::MutationRoot, subscription::SubscriptionRoot>;

/// Builds the schema over a store; committed changes are announced on `feed`.
pub fn schema(store: Store, feed: ChangeFeed) -> PvSchema {
    builder(store, feed).finish()
}

/// The schema's builder, for a server that adds extensions (metrics) of its own.
pub fn builder(
    store: Store,
    feed: ChangeFeed,
) -> async_graphql::SchemaBuilder<query::QueryRoot, mutation::MutationRoot, subscription::SubscriptionRoot> {
    Schema::build(query::QueryRoot::default(), mutation::MutationRoot::default(), subscription::SubscriptionRoot)
        .data(store)
        .data(feed)
        .extension(error::ErrorCodes)
        .limit_depth(16)
        .limit_complexity(5_000)
}

/// Attaches what one request needs: its own loaders, so caches never outlive it.
pub fn prepare(request: Request, store: &Store) -> Request {
    request.data(Loaders::new(store))
}

/// The schema's SDL, as checked into `schema/schema.graphql`.
pub fn sdl() -> String {
    Schema::build(query::QueryRoot::default(), mutation::MutationRoot::default(), subscription::SubscriptionRoot)
        .finish()
        .sdl()
}
