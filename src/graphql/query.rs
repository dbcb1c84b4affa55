//! The query root: nodes by id and one Relay connection per kind, with filters.

use async_graphql::{Context, ID, InputObject, MergedObject, Object, Result};

use crate::domain::RelationshipKind;
use crate::domain::{
    BarrierKind, Confidence, Embedding, ExperimentStatus, LearningKind, NodeId, NodeKind, PrincipleStatus,
};
use crate::store::{Direction, FieldTest, NodeFilter};

use super::connection::{NodeConnection, NodeOrder, Window, page};
use super::error::{bad_input, to_gql};
use super::nodes::*;

/// How many ids `nodes` takes at once.
const MAX_IDS: usize = 100;

/// Filters every list takes.
#[derive(InputObject, Default, Clone)]
#[graphql(name = "NodeFilter")]
pub struct NodeFilterInput {
    /// Owned by one of these organisations (slugs, e.g. `kc`).
    pub organisation: Option<Vec<String>>,
    /// The title contains this text, ignoring case.
    pub title_contains: Option<String>,
    /// Carries at least one of these tags.
    pub tags: Option<Vec<String>>,
}

impl NodeFilterInput {
    fn into_filter(self) -> Result<NodeFilter> {
        if self.organisation.as_ref().is_some_and(|o| o.len() > MAX_IDS) {
            return Err(bad_input("organisation", format!("at most {MAX_IDS} organisations are taken at once")));
        }
        if self.title_contains.as_ref().is_some_and(|t| t.chars().count() > crate::domain::MAX_TITLE) {
            return Err(bad_input("titleContains", "is longer than any title"));
        }
        Ok(NodeFilter {
            organisations: self.organisation.unwrap_or_default(),
            title_contains: self.title_contains.filter(|t| !t.is_empty()),
            tags: self.tags.unwrap_or_default(),
            fields: Vec::new(),
            related: Vec::new(),
            // The request's store (`store::Visible`) puts in the caller's audience.
            audience: Default::default(),
        })
    }
}

fn one_of<T: Copy>(field: &'static str, words: Option<Vec<T>>, word: fn(T) -> &'static str) -> Option<FieldTest> {
    // An empty list restricts nothing, as for every other list filter.
    words
        .filter(|w| !w.is_empty())
        .map(|w| FieldTest::OneOf(field, w.into_iter().map(|v| word(v).to_owned()).collect()))
}

#[derive(InputObject, Default)]
pub struct PrincipleFilter {
    #[graphql(flatten)]
    pub common: NodeFilterInput,
    pub status: Option<Vec<PrincipleStatus>>,
}

#[derive(InputObject, Default)]
pub struct BarrierFilter {
    #[graphql(flatten)]
    pub common: NodeFilterInput,
    pub kind: Option<Vec<BarrierKind>>,
    /// Severity at least this (1–5).
    pub severity_at_least: Option<i32>,
    /// Whether some experiment addresses the barrier: `false` lists the ones nobody has tried to shift yet.
    pub addressed: Option<bool>,
}

#[derive(InputObject, Default)]
pub struct ExperimentFilter {
    #[graphql(flatten)]
    pub common: NodeFilterInput,
    pub status: Option<Vec<ExperimentStatus>>,
    /// Evidence level at least this (1–5).
    pub evidence_level_at_least: Option<i32>,
}

#[derive(InputObject, Default)]
pub struct LearningFilter {
    #[graphql(flatten)]
    pub common: NodeFilterInput,
    pub kind: Option<Vec<LearningKind>>,
    pub confidence: Option<Vec<Confidence>>,
    pub embedding: Option<Vec<Embedding>>,
}

macro_rules! list_field {
    ($part:ident, $(#[$doc:meta])* $name:ident, $kind:ident, $filter:ty, $ty:ident, $to_filter:expr) => {
        #[derive(Default)]
        pub struct $part;

        #[Object]
        impl $part {
            $(#[$doc])*
            #[allow(clippy::too_many_arguments)]
            async fn $name(
                &self,
                ctx: &Context<'_>,
                first: Option<i32>,
                after: Option<String>,
                last: Option<i32>,
                before: Option<String>,
                filter: Option<$filter>,
                order_by: Option<NodeOrder>,
            ) -> Result<NodeConnection<$ty>> {
                let to_filter: fn($filter) -> Result<NodeFilter> = $to_filter;
                let filter = to_filter(filter.unwrap_or_default())?;
                page(ctx, NodeKind::$kind, filter, Window { first, after, last, before, order: order_by }, $ty).await
            }
        }
    };
}

/// The query root, merged from one part per concern.
#[derive(MergedObject, Default)]
#[graphql(name = "Query")]
pub struct QueryRoot(
    ByIdQuery,
    OrganisationsQuery,
    ValuesQuery,
    PrinciplesQuery,
    BarriersQuery,
    ExperimentsQuery,
    LearningsQuery,
    SourcesQuery,
    super::analysis::AnalysisQuery,
    super::federation::EntityQuery,
    super::partner::PartnerQuery,
    super::audit::AuditQueries,
);

#[derive(Default)]
pub struct ByIdQuery;

#[Object]
impl ByIdQuery {
    /// One node by id, or null when there is none.
    async fn node(&self, ctx: &Context<'_>, id: ID) -> Result<Option<NodeInterface>> {
        let id = NodeId::parse(&id).map_err(to_gql)?;
        let node = load_node_with(ctx, &id, &neighbour_directions(&ctx.look_ahead())).await?;
        // A node of a partner that could not be asked is an error, not a node that is not there.
        if node.is_none()
            && let Some(error) = super::partner::unreachable_node(ctx, &id)
        {
            return Err(error);
        }
        Ok(node.map(wrap))
    }

    /// Several nodes by id, in the order asked, with null where there is none.
    async fn nodes(&self, ctx: &Context<'_>, ids: Vec<ID>) -> Result<Vec<Option<NodeInterface>>> {
        if ids.len() > MAX_IDS {
            return Err(bad_input("ids", format!("at most {MAX_IDS} ids are taken at once")));
        }
        let ids = ids.iter().map(|id| NodeId::parse(id)).collect::<crate::domain::Result<Vec<_>>>().map_err(to_gql)?;
        let found = loaders(ctx).nodes.load_many(ids.iter().cloned()).await.map_err(|e| (*e).clone())?;
        Ok(ids.iter().map(|id| found.get(id).cloned().map(wrap)).collect())
    }
}

list_field!(OrganisationsQuery,
    /// Organisations: governments, agencies, partners.
    organisations, Organisation, NodeFilterInput, OrganisationNode, NodeFilterInput::into_filter);
list_field!(ValuesQuery,
    /// Public values.
    values, Value, NodeFilterInput, ValueNode, NodeFilterInput::into_filter);
list_field!(PrinciplesQuery,
/// Guiding principles.
principles, Principle, PrincipleFilter, PrincipleNode, |f| {
    let mut filter = f.common.into_filter()?;
    filter.fields.extend(one_of("status", f.status, PrincipleStatus::as_str));
    Ok(filter)
});
list_field!(BarriersQuery,
/// Barriers to public value.
barriers, Barrier, BarrierFilter, BarrierNode, |f| {
    let mut filter = f.common.into_filter()?;
    filter.fields.extend(one_of("kind", f.kind, BarrierKind::as_str));
    filter.fields.extend(f.severity_at_least.map(|n| FieldTest::AtLeast("severity", n.into())));
    filter.related.extend(f.addressed.map(|yes| (RelationshipKind::Addresses, Direction::In, yes)));
    Ok(filter)
});
list_field!(ExperimentsQuery,
/// Experiments.
experiments, Experiment, ExperimentFilter, ExperimentNode, |f| {
    let mut filter = f.common.into_filter()?;
    filter.fields.extend(one_of("status", f.status, ExperimentStatus::as_str));
    filter.fields.extend(f.evidence_level_at_least.map(|n| FieldTest::AtLeast("evidenceLevel", n.into())));
    Ok(filter)
});
list_field!(LearningsQuery,
/// Learnings.
learnings, Learning, LearningFilter, LearningNode, |f| {
    let mut filter = f.common.into_filter()?;
    filter.fields.extend(one_of("kind", f.kind, LearningKind::as_str));
    filter.fields.extend(one_of("confidence", f.confidence, Confidence::as_str));
    filter.fields.extend(one_of("embedding", f.embedding, Embedding::as_str));
    Ok(filter)
});
list_field!(SourcesQuery,
    /// Sources: the citations behind claims.
    sources, Source, NodeFilterInput, SourceNode, NodeFilterInput::into_filter);
