//! The GraphQL API: schema, resolvers, loaders and error mapping. Resolvers
//! speak to the store only through `Store` and the request's loaders.

mod analysis;
mod connection;
mod error;
mod limits;
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

use crate::limits::Limits;
use crate::store::Store;

pub type PvSchema = Schema<query::QueryRoot, mutation::MutationRoot, subscription::SubscriptionRoot>;

/// Builds the schema over a store with the default limits; committed changes are announced on `feed`.
pub fn schema(store: Store, feed: ChangeFeed) -> PvSchema {
    schema_with(store, feed, &Limits::default())
}

/// Builds the schema over a store under `limits`.
pub fn schema_with(store: Store, feed: ChangeFeed, limits: &Limits) -> PvSchema {
    let mut builder =
        Schema::build(query::QueryRoot::default(), mutation::MutationRoot::default(), subscription::SubscriptionRoot)
            .data(store)
            .data(feed)
            .data(limits.clone())
            .extension(error::ErrorCodes)
            // After ErrorCodes, so that limit refusals get their own code first.
            .extension(limits::CostLimits(std::sync::Arc::new(limits.clone())))
            .limit_depth(limits.max_depth.into())
            .limit_complexity(limits.max_complexity as usize);
    if !limits.introspection {
        builder = builder.disable_introspection();
    }
    builder.finish()
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
