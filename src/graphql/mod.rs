//! The GraphQL API: schema, resolvers, loaders and error mapping. Resolvers
//! speak to the store only through `Store` and the request's loaders.

mod analysis;
mod connection;
mod error;
mod federation;
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
