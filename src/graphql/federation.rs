//! Apollo Federation v2: every node kind is an entity keyed by `id`, so that
//! other teams' subgraphs can extend pvgraph's nodes and point at them.
//!
//! A gateway sends one `_entities` request with many representations; each is
//! resolved through the request's node loader, so the whole batch costs one
//! store call, whatever its size and however many kinds it mixes.

use std::sync::Arc;

use async_graphql::{Context, ID, Object, Result};

use crate::domain::{Node, NodeId, NodeKind};

use super::nodes::*;

/// The entity resolvers. They add no field to `Query`: async-graphql serves
/// them through `_entities` and marks each type with `@key(fields: "id")`.
#[derive(Default)]
pub struct EntityQuery;

/// One representation's node, or null when pvgraph holds no such node of
/// that kind: a malformed id or an id of another kind finds nothing rather
/// than failing the gateway's whole batch, as federation expects.
async fn entity<T>(ctx: &Context<'_>, id: &ID, kind: NodeKind, wrap: fn(Arc<Node>) -> T) -> Result<Option<T>> {
    match NodeId::parse(id) {
        Ok(id) if id.kind() == kind => Ok(load_node(ctx, &id).await?.map(wrap)),
        _ => Ok(None),
    }
}

/// One entity resolver per node kind; the method names are never served.
macro_rules! entity_resolvers {
    ($($method:ident: $kind:ident => $ty:ident),* $(,)?) => {
        #[Object]
        impl EntityQuery {
            $(
                #[graphql(entity)]
                async fn $method(&self, ctx: &Context<'_>, id: ID) -> Result<Option<$ty>> {
                    entity(ctx, &id, NodeKind::$kind, $ty).await
                }
            )*
        }
    };
}

entity_resolvers!(
    organisation_entity: Organisation => OrganisationNode,
    value_entity: Value => ValueNode,
    principle_entity: Principle => PrincipleNode,
    barrier_entity: Barrier => BarrierNode,
    experiment_entity: Experiment => ExperimentNode,
    learning_entity: Learning => LearningNode,
    source_entity: Source => SourceNode,
);
