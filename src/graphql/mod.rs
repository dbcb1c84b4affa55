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

use async_graphql::{EmptySubscription, Request, Schema};

pub use error::to_gql;
pub use loaders::Loaders;

use crate::store::Store;

pub type PvSchema = Schema<query::QueryRoot, mutation::MutationRoot, EmptySubscription>;

/// Builds the schema over a store.
pub fn schema(store: Store) -> PvSchema {
    Schema::build(query::QueryRoot::default(), mutation::MutationRoot::default(), EmptySubscription)
        .data(store)
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
    Schema::build(query::QueryRoot::default(), mutation::MutationRoot::default(), EmptySubscription).finish().sdl()
}
