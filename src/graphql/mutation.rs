//! The mutation root. Create and update inputs are turned into the seed
//! format's node record and checked by the same domain code as an import, so
//! the API and the importer cannot disagree about what is valid.

use std::sync::Arc;

use async_graphql::{Context, ID, InputObject, MaybeUndefined, MergedObject, Object, Result, SimpleObject};
use serde::Serialize;
use serde_json::{Map, Value as Json};

use crate::domain::{
    Actor, Applied, Assertion, BarrierKind, Caller, Change, Citation, Confidence, Edge, EdgeRecord, Embedding, Error,
    ExperimentStatus, InfluenceHow, LearningKind, Node, NodeId, NodeKind, NodePatch, PrincipleStatus, RelationshipKind,
    Strength, SystemCondition, Visibility, now, slugify,
};
use crate::store::Store;

use super::error::{bad_input, parse_id, to_gql};
use super::links::Relationship;
use super::nodes::*;
use super::scalars::Date;

type Opt<T> = MaybeUndefined<T>;

fn to_map<T: Serialize>(input: &T) -> Map<String, Json> {
    match serde_json::to_value(input) {
        Ok(Json::Object(map)) => map,
        _ => unreachable!("inputs serialise to objects"),
    }
}

async fn apply(ctx: &Context<'_>, changes: Vec<Change>) -> Result<Vec<Applied>> {
    for change in &changes {
        if let Change::Link(edge) = change {
            check_partner_ends(ctx, edge).await?;
        }
    }
    let store = ctx.data_unchecked::<Store>();
    let actor = Actor {
        caller: ctx.data_unchecked::<Caller>().clone(),
        operation: ctx.field().name().to_owned(),
        partners: ctx.data_opt::<crate::domain::PartnerOrgs>().map(|p| p.0.clone()).unwrap_or_default(),
        confirmation: None,
    };
    let applied = store.apply_as(changes, Some(&actor)).await.map_err(|failed| to_gql(failed.error))?;
    let everything = &ctx.data_unchecked::<super::Unfiltered>().0;
    ctx.data_unchecked::<super::ChangeFeed>().publish(&applied, everything).await;
    Ok(applied)
}

/// A relationship may point at a partner's node, by id; the partner is the source of truth for
/// it, so it is asked whether the node is there (as this caller may see it) and, for an influence
/// of a partner's learning, when the learning began. A partner that cannot be asked refuses the
/// change rather than let it be stored unchecked.
async fn check_partner_ends(ctx: &Context<'_>, edge: &crate::domain::Edge) -> Result<()> {
    let partners = ctx.data_opt::<crate::domain::PartnerOrgs>().map(|p| p.0.as_slice()).unwrap_or_default();
    for end in [&edge.from, &edge.to] {
        if !partners.iter().any(|p| p == end.organisation()) {
            continue;
        }
        let Some(node) = load_node(ctx, end).await? else {
            let missing = || to_gql(crate::domain::Error::no_node(end));
            return Err(super::partner::unreachable_node(ctx, end).unwrap_or_else(missing));
        };
        if end == &edge.from {
            crate::domain::check_influence_date(&node, edge).map_err(to_gql)?;
        }
    }
    Ok(())
}

/// Creates a node of `kind` from a create input's record.
async fn create(ctx: &Context<'_>, kind: NodeKind, mut record: Map<String, Json>) -> Result<Arc<Node>> {
    let organisation = match record.remove("organisation") {
        Some(Json::String(org)) => org,
        _ => return Err(bad_input("organisation", "is required")),
    };
    let slug = match record.remove("slug") {
        Some(Json::String(slug)) => slug,
        _ => {
            let title = record.get("title").and_then(Json::as_str).unwrap_or_default();
            let slug = slugify(title);
            if slug.is_empty() {
                return Err(bad_input("slug", "the title has no letters or digits to make a slug of; give a slug"));
            }
            slug
        }
    };
    let id = NodeId::new(&organisation, kind, &slug).map_err(to_gql)?;
    record.insert("id".into(), id.to_string().into());
    let node = Node::from_record(record, now()).map_err(to_gql)?;
    match apply(ctx, vec![Change::Create(node)]).await?.pop() {
        Some(Applied::Created(node)) => Ok(Arc::new(node)),
        _ => Err(to_gql(Error::internal(anyhow::anyhow!("a create applied as something else")))),
    }
}

/// Updates a node of `kind` with a merge patch.
async fn update(ctx: &Context<'_>, kind: NodeKind, id: &str, patch: Map<String, Json>) -> Result<Arc<Node>> {
    let id = NodeId::parse(id).map_err(to_gql)?;
    if id.kind() != kind {
        return Err(bad_input("id", format!("{id} is a {}, not a {}", id.kind().type_name(), kind.type_name())));
    }
    match apply(ctx, vec![Change::Update { id, patch: NodePatch(patch) }]).await?.pop() {
        Some(Applied::Updated { after, .. }) => Ok(Arc::new(after)),
        _ => Err(to_gql(Error::internal(anyhow::anyhow!("an update applied as something else")))),
    }
}

macro_rules! inputs {
    ($create:ident, $update:ident, $what:literal,
     required { $($(#[$rm:meta])* $required:ident : $rty:ty),* $(,)? }
     optional { $($(#[$m:meta])* $field:ident : $ty:ty),* $(,)? }) => {
        #[doc = concat!("A new ", $what, ". Its id is `<organisation>:<kind>:<slug>`; the slug comes from the title unless given.")]
        #[derive(InputObject, Serialize)]
        #[serde(rename_all = "camelCase")]
        pub struct $create {
            /// The owning organisation's slug, e.g. `kc`.
            pub organisation: String,
            /// Lower-case words joined by hyphens; derived from the title when left out.
            #[serde(skip_serializing_if = "Option::is_none")]
            pub slug: Option<String>,
            pub title: String,
            #[serde(skip_serializing_if = "Option::is_none")]
            pub description: Option<String>,
            #[serde(skip_serializing_if = "Option::is_none")]
            pub tags: Option<Vec<String>>,
            #[serde(skip_serializing_if = "Option::is_none")]
            pub visibility: Option<Visibility>,
            #[serde(skip_serializing_if = "Option::is_none")]
            pub assertion: Option<Assertion>,
            $($(#[$rm])* pub $required: $rty,)*
            $($(#[$m])* #[serde(skip_serializing_if = "Option::is_none")] pub $field: Option<$ty>,)*
        }

        #[doc = concat!("Changes to a ", $what, ": a field left out stays as it is; a field set to null is cleared.")]
        #[derive(InputObject, Serialize, Default)]
        #[serde(rename_all = "camelCase")]
        pub struct $update {
            #[serde(skip_serializing_if = "MaybeUndefined::is_undefined")]
            pub title: Opt<String>,
            #[serde(skip_serializing_if = "MaybeUndefined::is_undefined")]
            pub description: Opt<String>,
            #[serde(skip_serializing_if = "MaybeUndefined::is_undefined")]
            pub tags: Opt<Vec<String>>,
            #[serde(skip_serializing_if = "MaybeUndefined::is_undefined")]
            pub visibility: Opt<Visibility>,
            #[serde(skip_serializing_if = "MaybeUndefined::is_undefined")]
            pub assertion: Opt<Assertion>,
            $($(#[$rm])* #[serde(skip_serializing_if = "MaybeUndefined::is_undefined")] pub $required: Opt<$rty>,)*
            $($(#[$m])* #[serde(skip_serializing_if = "MaybeUndefined::is_undefined")] pub $field: Opt<$ty>,)*
        }
    };
}

inputs!(CreateOrganisationInput, UpdateOrganisationInput, "organisation", required {} optional {
    jurisdiction: String,
    /// What the organisation is for.
    purpose: String,
});
inputs!(CreateValueInput, UpdateValueInput, "value", required {} optional { definition: String });
inputs!(CreatePrincipleInput, UpdatePrincipleInput, "principle", required { statement: String } optional {
    rationale: String,
    status: PrincipleStatus,
    adopted_on: Date,
});
inputs!(CreateBarrierInput, UpdateBarrierInput, "barrier", required { kind: BarrierKind } optional {
    /// 1 (a little) to 5 (most).
    severity: i32,
});
inputs!(CreateExperimentInput, UpdateExperimentInput, "experiment", required { hypothesis: String } optional {
    status: ExperimentStatus,
    started_on: Date,
    ended_on: Date,
    /// Nesta standards of evidence, 1 to 5.
    evidence_level: i32,
    failure_notes: String,
});
inputs!(CreateLearningInput, UpdateLearningInput, "learning", required { statement: String, kind: LearningKind } optional {
    confidence: Confidence,
    embedding: Embedding,
    /// When the learning was first recorded; it cannot influence anything earlier.
    captured_on: Date,
    embedded_on: Date,
});
inputs!(CreateSourceInput, UpdateSourceInput, "source", required { url: String } optional {
    publisher: String,
    published_on: Date,
    quote: String,
    locator: String,
});

/// A relationship to add. INFLUENCED needs `recordInfluence`, which takes its properties.
#[derive(InputObject)]
pub struct LinkInput {
    pub from: ID,
    pub kind: RelationshipKind,
    pub to: ID,
    /// Defaults to INFERRED: only SOURCED when a source states it.
    pub assertion: Option<Assertion>,
    /// CITES only: the words quoted.
    pub quote: Option<String>,
    /// CITES only: where in the source.
    pub locator: Option<String>,
}

/// An influence of a learning on a value, principle, barrier, experiment or learning.
#[derive(InputObject, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordInfluenceInput {
    /// The learning.
    pub from: ID,
    /// What it influenced.
    pub to: ID,
    pub how: InfluenceHow,
    pub system_condition: SystemCondition,
    /// When it happened; not before the learning existed.
    pub on: Date,
    /// The contribution claim, in words.
    pub contribution: Option<String>,
    pub strength: Option<Strength>,
    /// Defaults to INFERRED; SOURCED needs at least one source.
    pub assertion: Option<Assertion>,
    /// Ids of the sources behind the claim.
    pub sources: Option<Vec<ID>>,
}

/// What `deleteNode` removed.
#[derive(SimpleObject)]
pub struct DeletedNode {
    pub id: ID,
    /// How many relationships went with the node.
    pub removed_relationships: i32,
}

async fn link_one(ctx: &Context<'_>, edge: Edge) -> Result<Relationship> {
    match apply(ctx, vec![Change::Link(edge)]).await?.pop() {
        Some(Applied::Linked(edge)) => Ok(Relationship(edge)),
        _ => Err(to_gql(Error::internal(anyhow::anyhow!("a link applied as something else")))),
    }
}

macro_rules! create_update {
    ($part:ident, $create_fn:ident, $update_fn:ident, $kind:ident, $create:ty, $update:ty, $ty:ident) => {
        #[derive(Default)]
        pub struct $part;

        #[Object]
        impl $part {
            #[doc = concat!("Creates a node of kind ", stringify!($kind), ".")]
            async fn $create_fn(&self, ctx: &Context<'_>, input: $create) -> Result<$ty> {
                create(ctx, NodeKind::$kind, to_map(&input)).await.map($ty)
            }

            #[doc = concat!("Changes a node of kind ", stringify!($kind), ".")]
            async fn $update_fn(&self, ctx: &Context<'_>, id: ID, input: $update) -> Result<$ty> {
                update(ctx, NodeKind::$kind, &id, to_map(&input)).await.map($ty)
            }
        }
    };
}

create_update!(ValueMutation, create_value, update_value, Value, CreateValueInput, UpdateValueInput, ValueNode);
create_update!(
    PrincipleMutation,
    create_principle,
    update_principle,
    Principle,
    CreatePrincipleInput,
    UpdatePrincipleInput,
    PrincipleNode
);
create_update!(
    BarrierMutation,
    create_barrier,
    update_barrier,
    Barrier,
    CreateBarrierInput,
    UpdateBarrierInput,
    BarrierNode
);
create_update!(
    ExperimentMutation,
    create_experiment,
    update_experiment,
    Experiment,
    CreateExperimentInput,
    UpdateExperimentInput,
    ExperimentNode
);
create_update!(
    LearningMutation,
    create_learning,
    update_learning,
    Learning,
    CreateLearningInput,
    UpdateLearningInput,
    LearningNode
);
create_update!(SourceMutation, create_source, update_source, Source, CreateSourceInput, UpdateSourceInput, SourceNode);

/// The mutation root, merged from one part per concern.
#[derive(MergedObject, Default)]
#[graphql(name = "Mutation")]
pub struct MutationRoot(
    GraphMutation,
    ValueMutation,
    PrincipleMutation,
    BarrierMutation,
    ExperimentMutation,
    LearningMutation,
    SourceMutation,
);

#[derive(Default)]
pub struct GraphMutation;

#[Object]
impl GraphMutation {
    /// Creates an organisation; its slug becomes the first part of every id it owns.
    async fn create_organisation(&self, ctx: &Context<'_>, input: CreateOrganisationInput) -> Result<OrganisationNode> {
        let mut record = to_map(&input);
        let org = input.slug.clone().unwrap_or_else(|| input.organisation.clone());
        if input.slug.as_ref().is_some_and(|s| *s != input.organisation) {
            return Err(bad_input("slug", "an organisation's slug is its organisation slug; leave it out"));
        }
        record.insert("slug".into(), org.into());
        create(ctx, NodeKind::Organisation, record).await.map(OrganisationNode)
    }

    async fn update_organisation(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateOrganisationInput,
    ) -> Result<OrganisationNode> {
        update(ctx, NodeKind::Organisation, &id, to_map(&input)).await.map(OrganisationNode)
    }

    /// Deletes a node and every relationship it has.
    async fn delete_node(&self, ctx: &Context<'_>, id: ID) -> Result<DeletedNode> {
        let id = parse_id("id", &id)?;
        match apply(ctx, vec![Change::Delete(id)]).await?.pop() {
            Some(Applied::Deleted { node, edges }) => {
                Ok(DeletedNode { id: ID(node.id.to_string()), removed_relationships: edges.len() as i32 })
            }
            _ => Err(to_gql(Error::internal(anyhow::anyhow!("a delete applied as something else")))),
        }
    }

    /// Adds a relationship the model allows between two nodes.
    async fn link(&self, ctx: &Context<'_>, input: LinkInput) -> Result<Relationship> {
        if input.kind == RelationshipKind::Influenced {
            return Err(bad_input("kind", "INFLUENCED needs its properties; use recordInfluence"));
        }
        let has_citation = input.quote.is_some() || input.locator.is_some();
        let edge = Edge {
            kind: input.kind,
            from: parse_id("from", &input.from)?,
            to: parse_id("to", &input.to)?,
            assertion: input.assertion.unwrap_or_default(),
            influence: None,
            citation: (has_citation || input.kind == RelationshipKind::Cites)
                .then(|| std::sync::Arc::new(Citation { quote: input.quote, locator: input.locator })),
        }
        .checked()
        .map_err(to_gql)?;
        link_one(ctx, edge).await
    }

    /// Removes a relationship, returning it as it was.
    async fn unlink(&self, ctx: &Context<'_>, from: ID, kind: RelationshipKind, to: ID) -> Result<Relationship> {
        let change = Change::Unlink { from: parse_id("from", &from)?, kind, to: parse_id("to", &to)? };
        match apply(ctx, vec![change]).await?.pop() {
            Some(Applied::Unlinked(edge)) => Ok(Relationship(edge)),
            _ => Err(to_gql(Error::internal(anyhow::anyhow!("an unlink applied as something else")))),
        }
    }

    /// Records that a learning influenced something, when, how and how strongly.
    async fn record_influence(&self, ctx: &Context<'_>, input: RecordInfluenceInput) -> Result<Relationship> {
        let mut record = to_map(&input);
        record.insert("kind".into(), RelationshipKind::Influenced.as_str().into());
        let edge = EdgeRecord::from_json(Json::Object(record)).and_then(EdgeRecord::into_edge).map_err(to_gql)?;
        link_one(ctx, edge).await
    }
}
