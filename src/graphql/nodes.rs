//! The seven node types and the `Node` interface they share. Each type wraps
//! the domain node; relationship fields go through the request's loaders.

use std::sync::Arc;

use async_graphql::{Context, ID, Interface, Object, Result};
use chrono::{DateTime, Utc};

use crate::domain::{
    Assertion, BarrierKind, Confidence, Details, Embedding, ExperimentStatus, LearningKind, Node, NodeId, NodeKind,
    PrincipleStatus, RelationshipKind, Visibility,
};
use crate::store::Direction;

use super::links::{Citation, InfluenceConnection, LinkDirection, Relationship, neighbours, relationships};
use super::loaders::Loaders;
use super::scalars::Date;

/// Any node of the graph.
#[allow(clippy::duplicated_attributes)] // the derive repeats `ty` per field by design
#[derive(Interface, Clone)]
#[graphql(
    name = "Node",
    field(name = "id", ty = "ID", desc = "The node's id: `<organisation>:<kind>:<slug>`."),
    field(name = "organisation_slug", ty = "String", desc = "The slug of the organisation that owns the node."),
    field(name = "organisation", ty = "Option<OrganisationNode>", desc = "The organisation that owns the node."),
    field(name = "title", ty = "String"),
    field(name = "description", ty = "String"),
    field(name = "tags", ty = "Vec<String>"),
    field(name = "visibility", ty = "Visibility"),
    field(
        name = "assertion",
        ty = "Assertion",
        desc = "Whether a public source states this node, or it is inferred or hypothetical."
    ),
    field(name = "created_at", ty = "DateTime<Utc>"),
    field(name = "updated_at", ty = "DateTime<Utc>"),
    field(
        name = "cites",
        ty = "Vec<Citation>",
        desc = "The sources this node cites, with the quote and place in each."
    ),
    field(
        name = "links",
        ty = "Vec<Relationship>",
        desc = "The node's relationships of any kind, both ways unless `direction` says otherwise.",
        arg(name = "direction", ty = "Option<LinkDirection>"),
        arg(name = "kinds", ty = "Option<Vec<RelationshipKind>>")
    )
)]
pub enum NodeInterface {
    Organisation(OrganisationNode),
    Value(ValueNode),
    Principle(PrincipleNode),
    Barrier(BarrierNode),
    Experiment(ExperimentNode),
    Learning(LearningNode),
    Source(SourceNode),
}

/// Wraps a domain node in its GraphQL type.
pub fn wrap(node: Arc<Node>) -> NodeInterface {
    match node.kind() {
        NodeKind::Organisation => NodeInterface::Organisation(OrganisationNode(node)),
        NodeKind::Value => NodeInterface::Value(ValueNode(node)),
        NodeKind::Principle => NodeInterface::Principle(PrincipleNode(node)),
        NodeKind::Barrier => NodeInterface::Barrier(BarrierNode(node)),
        NodeKind::Experiment => NodeInterface::Experiment(ExperimentNode(node)),
        NodeKind::Learning => NodeInterface::Learning(LearningNode(node)),
        NodeKind::Source => NodeInterface::Source(SourceNode(node)),
    }
}

pub(super) fn loaders<'a>(ctx: &Context<'a>) -> &'a Loaders {
    ctx.data_unchecked::<Loaders>()
}

/// The fields of node types that list a node's neighbours one way (`related!`): a query that
/// selects any of them on `node(id)` has the node read with its relationships that way (see
/// `Loaders::node_with_edges`). A field left out here is still answered, by its loader.
const NEIGHBOURS: [(&str, Direction); 11] = [
    ("upholds", Direction::Out),
    ("hinders", Direction::Out),
    ("guidedBy", Direction::Out),
    ("addresses", Direction::Out),
    ("produced", Direction::Out),
    ("upheldBy", Direction::In),
    ("hinderedBy", Direction::In),
    ("guides", Direction::In),
    ("addressedBy", Direction::In),
    ("producedBy", Direction::In),
    ("citedBy", Direction::In),
];

/// The ways a selection on a node lists its neighbours (`NEIGHBOURS`), each once.
pub(super) fn neighbour_directions(selection: &async_graphql::Lookahead<'_>) -> Vec<Direction> {
    let mut directions = Vec::new();
    for (field, direction) in NEIGHBOURS {
        if !directions.contains(&direction) && selection.field(field).exists() {
            directions.push(direction);
        }
    }
    directions
}

/// Loads one node by id, with its relationships the ways `directions` when the store reads them
/// together for less (the request's loaders then answer them from what it read), else through
/// the request's loader.
pub(super) async fn load_node_with(
    ctx: &Context<'_>,
    id: &NodeId,
    directions: &[Direction],
) -> Result<Option<Arc<Node>>> {
    if !directions.is_empty()
        && let Some(node) = loaders(ctx).node_with_edges(id, directions).await?
    {
        return Ok(node);
    }
    load_node(ctx, id).await
}

/// Loads one node by id through the request's loader.
pub(super) async fn load_node(ctx: &Context<'_>, id: &NodeId) -> Result<Option<Arc<Node>>> {
    loaders(ctx).nodes.load_one(id.clone()).await.map_err(|e| (*e).clone())
}

macro_rules! node_type {
    ($rust:ident, $name:literal, $kind:ident, $details:ident, $doc:literal, { $($fields:tt)* }) => {
        #[doc = $doc]
        #[derive(Clone)]
        pub struct $rust(pub Arc<Node>);

        impl $rust {
            #[allow(dead_code)]
            fn details(&self) -> &crate::domain::$details {
                match &self.0.details {
                    Details::$kind(details) => details,
                    _ => unreachable!("a {} node always has {} details", $name, $name),
                }
            }
        }

        #[Object(name = $name)]
        impl $rust {
            /// The node's id: `<organisation>:<kind>:<slug>`.
            async fn id(&self) -> ID {
                ID(self.0.id.as_str().to_owned())
            }

            /// The slug of the organisation that owns the node.
            async fn organisation_slug(&self) -> String {
                self.0.organisation().to_owned()
            }

            /// The organisation that owns the node.
            async fn organisation(&self, ctx: &Context<'_>) -> Result<Option<OrganisationNode>> {
                let id = NodeId::organisation_node(self.0.organisation()).map_err(super::error::to_gql)?;
                Ok(load_node(ctx, &id).await?.map(OrganisationNode))
            }

            async fn title(&self) -> String {
                self.0.title.clone()
            }

            async fn description(&self) -> String {
                self.0.description.clone()
            }

            async fn tags(&self) -> Vec<String> {
                self.0.tags.clone()
            }

            async fn visibility(&self) -> Visibility {
                self.0.visibility
            }

            /// Whether a public source states this node, or it is inferred or hypothetical.
            async fn assertion(&self) -> Assertion {
                self.0.assertion
            }

            async fn created_at(&self) -> DateTime<Utc> {
                self.0.created_at
            }

            async fn updated_at(&self) -> DateTime<Utc> {
                self.0.updated_at
            }

            /// The node's relationships of any kind, both ways unless `direction` says otherwise:
            /// outgoing ones first, then incoming ones, each in the order of `RelationshipKind`
            /// and then by the id of the node at the other end.
            async fn links(
                &self,
                ctx: &Context<'_>,
                direction: Option<LinkDirection>,
                kinds: Option<Vec<RelationshipKind>>,
            ) -> Result<Vec<Relationship>> {
                relationships(ctx, &self.0.id, direction.unwrap_or(LinkDirection::Both), kinds.as_deref()).await
            }

            /// The sources this node cites, with the quote and place in each.
            async fn cites(&self, ctx: &Context<'_>) -> Result<Vec<Citation>> {
                Citation::of(ctx, &self.0.id, Direction::Out).await
            }

            $($fields)*
        }
    };
}

macro_rules! related {
    ($ctx:expr, $id:expr, $dir:ident, $kind:ident, $wrap:ident) => {
        neighbours($ctx, $id, Direction::$dir, RelationshipKind::$kind)
            .await
            .map(|nodes| nodes.into_iter().map($wrap).collect())
    };
}

node_type!(
    OrganisationNode,
    "Organisation",
    Organisation,
    OrganisationDetails,
    "An organisation that owns part of the graph: a government, an agency, a partner.",
    {
        /// The organisation's name (its title).
        async fn name(&self) -> String {
            self.0.title.clone()
        }

        async fn slug(&self) -> String {
            self.0.organisation().to_owned()
        }

        async fn jurisdiction(&self) -> Option<String> {
            self.details().jurisdiction.clone()
        }

        /// What the organisation is for, e.g. King County's "True North".
        async fn purpose(&self) -> Option<String> {
            self.details().purpose.clone()
        }
    }
);

node_type!(
    ValueNode,
    "Value",
    Value,
    ValueDetails,
    "A public value an organisation holds: equity, sustainability, trust…",
    {
        /// The value's name (its title).
        async fn name(&self) -> String {
            self.0.title.clone()
        }

        async fn definition(&self) -> Option<String> {
            self.details().definition.clone()
        }

        /// Principles that uphold this value.
        async fn upheld_by(&self, ctx: &Context<'_>) -> Result<Vec<PrincipleNode>> {
            related!(ctx, &self.0.id, In, Upholds, PrincipleNode)
        }

        /// Barriers that hinder this value.
        async fn hindered_by(&self, ctx: &Context<'_>) -> Result<Vec<BarrierNode>> {
            related!(ctx, &self.0.id, In, Hinders, BarrierNode)
        }

        /// Learnings that influenced this value, with how and how strongly.
        async fn influenced_by(
            &self,
            ctx: &Context<'_>,
            first: Option<i32>,
            after: Option<String>,
        ) -> Result<InfluenceConnection> {
            InfluenceConnection::load(ctx, &self.0.id, Direction::In, first, after).await
        }
    }
);

node_type!(
    PrincipleNode,
    "Principle",
    Principle,
    PrincipleDetails,
    "A guiding principle: how an organisation means to act on its values.",
    {
        async fn statement(&self) -> String {
            self.details().statement.clone()
        }

        async fn rationale(&self) -> Option<String> {
            self.details().rationale.clone()
        }

        async fn status(&self) -> PrincipleStatus {
            self.details().status
        }

        async fn adopted_on(&self) -> Option<Date> {
            self.details().adopted_on.map(Date)
        }

        /// Values this principle upholds.
        async fn upholds(&self, ctx: &Context<'_>) -> Result<Vec<ValueNode>> {
            related!(ctx, &self.0.id, Out, Upholds, ValueNode)
        }

        /// Experiments guided by this principle.
        async fn guides(&self, ctx: &Context<'_>) -> Result<Vec<ExperimentNode>> {
            related!(ctx, &self.0.id, In, GuidedBy, ExperimentNode)
        }

        /// Barriers that hinder this principle.
        async fn hindered_by(&self, ctx: &Context<'_>) -> Result<Vec<BarrierNode>> {
            related!(ctx, &self.0.id, In, Hinders, BarrierNode)
        }

        /// Learnings that influenced this principle, with how and how strongly.
        async fn influenced_by(
            &self,
            ctx: &Context<'_>,
            first: Option<i32>,
            after: Option<String>,
        ) -> Result<InfluenceConnection> {
            InfluenceConnection::load(ctx, &self.0.id, Direction::In, first, after).await
        }
    }
);

node_type!(
    BarrierNode,
    "Barrier",
    Barrier,
    BarrierDetails,
    "Something that stands in the way of public value: institutional, structural, personal or cultural.",
    {
        async fn kind(&self) -> BarrierKind {
            self.details().kind
        }

        /// How much the barrier hinders, from 1 (a little) to 5 (most).
        async fn severity(&self) -> Option<i32> {
            self.details().severity
        }

        /// The principles and values this barrier hinders.
        async fn hinders(&self, ctx: &Context<'_>) -> Result<Vec<NodeInterface>> {
            related!(ctx, &self.0.id, Out, Hinders, wrap)
        }

        /// Experiments that address this barrier.
        async fn addressed_by(&self, ctx: &Context<'_>) -> Result<Vec<ExperimentNode>> {
            related!(ctx, &self.0.id, In, Addresses, ExperimentNode)
        }

        /// Learnings that influenced this barrier, with how and how strongly.
        async fn influenced_by(
            &self,
            ctx: &Context<'_>,
            first: Option<i32>,
            after: Option<String>,
        ) -> Result<InfluenceConnection> {
            InfluenceConnection::load(ctx, &self.0.id, Direction::In, first, after).await
        }
    }
);

node_type!(
    ExperimentNode,
    "Experiment",
    Experiment,
    ExperimentDetails,
    "A new idea tried in practice, guided by principles and addressing barriers.",
    {
        async fn hypothesis(&self) -> String {
            self.details().hypothesis.clone()
        }

        async fn status(&self) -> ExperimentStatus {
            self.details().status
        }

        async fn started_on(&self) -> Option<Date> {
            self.details().started_on.map(Date)
        }

        async fn ended_on(&self) -> Option<Date> {
            self.details().ended_on.map(Date)
        }

        /// Nesta standards of evidence, from 1 (a logical reason) to 5 (replicated at scale).
        async fn evidence_level(&self) -> Option<i32> {
            self.details().evidence_level
        }

        /// What did not work, told plainly.
        async fn failure_notes(&self) -> Option<String> {
            self.details().failure_notes.clone()
        }

        /// Principles that guided this experiment.
        async fn guided_by(&self, ctx: &Context<'_>) -> Result<Vec<PrincipleNode>> {
            related!(ctx, &self.0.id, Out, GuidedBy, PrincipleNode)
        }

        /// Barriers this experiment addresses.
        async fn addresses(&self, ctx: &Context<'_>) -> Result<Vec<BarrierNode>> {
            related!(ctx, &self.0.id, Out, Addresses, BarrierNode)
        }

        /// Learnings this experiment produced.
        async fn produced(&self, ctx: &Context<'_>) -> Result<Vec<LearningNode>> {
            related!(ctx, &self.0.id, Out, Produced, LearningNode)
        }

        /// Learnings that informed or shaped this experiment.
        async fn influenced_by(
            &self,
            ctx: &Context<'_>,
            first: Option<i32>,
            after: Option<String>,
        ) -> Result<InfluenceConnection> {
            InfluenceConnection::load(ctx, &self.0.id, Direction::In, first, after).await
        }
    }
);

node_type!(
    LearningNode,
    "Learning",
    Learning,
    LearningDetails,
    "What an experiment taught, and how far it has been embedded.",
    {
        async fn statement(&self) -> String {
            self.details().statement.clone()
        }

        async fn kind(&self) -> LearningKind {
            self.details().kind
        }

        /// Confidence in the finding (GRADE-CERQual).
        async fn confidence(&self) -> Option<Confidence> {
            self.details().confidence
        }

        async fn embedding(&self) -> Embedding {
            self.details().embedding
        }

        /// When the learning was first recorded.
        async fn captured_on(&self) -> Option<Date> {
            self.details().captured_on.map(Date)
        }

        async fn embedded_on(&self) -> Option<Date> {
            self.details().embedded_on.map(Date)
        }

        /// Experiments that produced this learning.
        async fn produced_by(&self, ctx: &Context<'_>) -> Result<Vec<ExperimentNode>> {
            related!(ctx, &self.0.id, In, Produced, ExperimentNode)
        }

        /// What this learning influenced, with how, when and how strongly.
        async fn influences(
            &self,
            ctx: &Context<'_>,
            first: Option<i32>,
            after: Option<String>,
        ) -> Result<InfluenceConnection> {
            InfluenceConnection::load(ctx, &self.0.id, Direction::Out, first, after).await
        }

        /// Other learnings that influenced this one.
        async fn influenced_by(
            &self,
            ctx: &Context<'_>,
            first: Option<i32>,
            after: Option<String>,
        ) -> Result<InfluenceConnection> {
            InfluenceConnection::load(ctx, &self.0.id, Direction::In, first, after).await
        }
    }
);

node_type!(
    SourceNode,
    "Source",
    Source,
    SourceDetails,
    "A citation behind a claim: a public page, report or record.",
    {
        async fn url(&self) -> String {
            self.details().url.clone()
        }

        async fn publisher(&self) -> Option<String> {
            self.details().publisher.clone()
        }

        async fn published_on(&self) -> Option<Date> {
            self.details().published_on.map(Date)
        }

        async fn quote(&self) -> Option<String> {
            self.details().quote.clone()
        }

        /// Where in the source: a page, a section, a timestamp.
        async fn locator(&self) -> Option<String> {
            self.details().locator.clone()
        }

        /// The nodes that cite this source.
        async fn cited_by(&self, ctx: &Context<'_>) -> Result<Vec<Citation>> {
            Citation::of(ctx, &self.0.id, Direction::In).await
        }
    }
);
