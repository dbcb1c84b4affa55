//! The GraphQL API: schema, resolvers, loaders and error mapping. Resolvers
//! speak to the store only through `Store` and the request's loaders.

mod analysis;
mod api;
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

use std::sync::Arc;

use async_graphql::{Request, SDLExportOptions, Schema};

pub use api::{Api, Operation};
pub use error::to_gql;
pub use loaders::{Batching, Loaders};
pub use subscription::{ChangeFeed, GraphEvent};

use crate::domain::Caller;
use crate::limits::Limits;
use crate::partner::{Federated, Partners, Report};
use crate::store::{Store, Visible};

pub type PvSchema = Schema<query::QueryRoot, mutation::MutationRoot, subscription::SubscriptionRoot>;

/// The API over a store with the default limits; committed changes are announced on `feed`.
pub fn api(store: Store, feed: ChangeFeed) -> Api {
    api_with(store, feed, &Limits::default())
}

/// The API over a store under `limits`.
pub fn api_with(store: Store, feed: ChangeFeed, limits: &Limits) -> Api {
    let builder =
        Schema::build(query::QueryRoot::default(), mutation::MutationRoot::default(), subscription::SubscriptionRoot)
            .data(store.clone())
            .data(Unfiltered(store))
            // A request that brings no caller of its own is anonymous.
            .data(Caller::Anonymous)
            .data(feed)
            .data(limits.clone())
            .limit_depth(limits.max_depth.into())
            .limit_complexity(limits.max_complexity as usize);
    // No extensions: what they would do runs around execution instead (see `Api`).
    let builder = if limits.introspection { builder } else { builder.disable_introspection() };
    Api::new(builder.finish(), Arc::new(limits.clone()))
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
/// Its loaders batch every round of a poll when the request runs through `batching`. With a
/// `confirmation` (the caller admitted before the store confirmed them), its writes wait for it.
pub fn prepare(
    request: Request,
    store: &Store,
    caller: Caller,
    confirmation: Option<crate::auth::Confirmation>,
    partners: Option<&Arc<Partners>>,
    batching: &Batching,
) -> Request {
    // Without partners a request needs neither the view across them nor a report.
    let partners = partners.filter(|p| !p.is_empty()).map(|p| (p, Report::default()));
    let base: Store = match &partners {
        Some((partners, report)) => Arc::new(Federated::new(store.clone(), Arc::clone(partners), report.clone())),
        None => store.clone(),
    };
    let visible: Store = Arc::new(Visible::new(base, caller.clone()).unconfirmed(confirmation));
    let request = request.data(Loaders::new(&visible, batching)).data(visible).data(caller);
    match partners {
        Some((partners, report)) => request.data(report).data(crate::domain::PartnerOrgs(partners.organisations())),
        None => request,
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
