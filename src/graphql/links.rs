//! Relationship fields: plain neighbour lists, the generic `links`, citations,
//! and the influence connections that carry INFLUENCED's properties.

use std::sync::Arc;

use async_graphql::connection::PageInfo;
use async_graphql::{Context, Enum, ID, Object, Result, SimpleObject};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::domain::{Assertion, Edge, InfluenceHow, Node, NodeId, RelationshipKind, Strength, SystemCondition};
use crate::store::Direction;
use crate::store::traverse::far_end;

use super::error::bad_input;
use super::loaders::Linked;
use super::nodes::{LearningNode, NodeInterface, SourceNode, load_node, loaders, wrap};
use super::scalars::Date;

/// Which relationships of a node to follow.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum LinkDirection {
    /// Relationships from this node to others.
    Out,
    /// Relationships from others to this node.
    In,
    Both,
}

/// All the relationships of one node one way, from the request's loader.
pub(super) async fn edges_of(ctx: &Context<'_>, id: &NodeId, direction: Direction) -> Result<Arc<Linked>> {
    if let Some(read) = loaders(ctx).read_with_node(id, direction) {
        return Ok(read);
    }
    let loaded = loaders(ctx).edges(direction).load_one(id.clone()).await.map_err(|e| (*e).clone())?;
    Ok(loaded.unwrap_or_default())
}

/// The other ends of a node's relationships of one kind, ordered by title.
pub(super) async fn neighbours(
    ctx: &Context<'_>,
    id: &NodeId,
    direction: Direction,
    kind: RelationshipKind,
) -> Result<Vec<Arc<Node>>> {
    let edges = edges_of(ctx, id, direction).await?;
    let ends = edges.iter().filter(|e| e.kind == kind).map(|e| far_end(e, direction));
    // The ends read with the relationships are taken as they are; only the others are loaded.
    let (mut nodes, missing): (Vec<Arc<Node>>, Vec<NodeId>) = ends.fold((Vec::new(), Vec::new()), |mut acc, end| {
        match edges.ends.get(end) {
            Some(node) => acc.0.push(node.clone()),
            None => acc.1.push(end.clone()),
        }
        acc
    });
    if !missing.is_empty() {
        nodes.extend(loaders(ctx).nodes.load_many(missing).await.map_err(|e| (*e).clone())?.into_values());
    }
    nodes.sort_by(|a, b| a.title.cmp(&b.title).then_with(|| a.id.cmp(&b.id)));
    Ok(nodes)
}

pub(super) async fn relationships(
    ctx: &Context<'_>,
    id: &NodeId,
    direction: LinkDirection,
    kinds: Option<&[RelationshipKind]>,
) -> Result<Vec<Relationship>> {
    let mut out = Vec::new();
    for (want, dir) in [(LinkDirection::Out, Direction::Out), (LinkDirection::In, Direction::In)] {
        if direction == want || direction == LinkDirection::Both {
            let edges = edges_of(ctx, id, dir).await?;
            let mut these: Vec<&Edge> = edges.iter().filter(|e| kinds.is_none_or(|k| k.contains(&e.kind))).collect();
            // Stores hand relationships back in their own order; the answer's is the schema's.
            these.sort_by(|a, b| (a.kind, far_end(a, dir)).cmp(&(b.kind, far_end(b, dir))));
            out.extend(these.into_iter().map(|e| Relationship(e.clone())));
        }
    }
    Ok(out)
}

async fn must_load(ctx: &Context<'_>, id: &NodeId) -> Result<NodeInterface> {
    load_node(ctx, id).await?.map(wrap).ok_or_else(|| super::error::to_gql(crate::domain::Error::no_node(id)))
}

/// An end of a relationship: from the store, or, for a node deleted a moment ago together with
/// its relationships (as events and mutation answers report them), the node as it was.
async fn end_of(ctx: &Context<'_>, id: &NodeId) -> Result<NodeInterface> {
    if let Some(node) = load_node(ctx, id).await? {
        return Ok(wrap(node));
    }
    let gone = ctx.data_opt::<super::ChangeFeed>().and_then(|feed| feed.recently_deleted(id));
    gone.map(wrap).ok_or_else(|| super::error::to_gql(crate::domain::Error::no_node(id)))
}

async fn sources_of(ctx: &Context<'_>, edge: &Edge) -> Result<Vec<SourceNode>> {
    let Some(influence) = &edge.influence else { return Ok(Vec::new()) };
    let found = loaders(ctx).nodes.load_many(influence.sources.iter().cloned()).await.map_err(|e| (*e).clone())?;
    Ok(influence.sources.iter().filter_map(|id| found.get(id).cloned()).map(SourceNode).collect())
}

/// A relationship between two nodes, with its properties.
pub struct Relationship(pub Edge);

#[Object]
impl Relationship {
    async fn kind(&self) -> RelationshipKind {
        self.0.kind
    }

    /// The id of the node the relationship starts from.
    async fn from_id(&self) -> ID {
        ID(self.0.from.as_str().to_owned())
    }

    /// The id of the node the relationship points to.
    async fn to_id(&self) -> ID {
        ID(self.0.to.as_str().to_owned())
    }

    /// The node the relationship starts from (as it was, when the relationship went with it).
    async fn from(&self, ctx: &Context<'_>) -> Result<NodeInterface> {
        end_of(ctx, &self.0.from).await
    }

    /// The node the relationship points to (as it was, when the relationship went with it).
    async fn to(&self, ctx: &Context<'_>) -> Result<NodeInterface> {
        end_of(ctx, &self.0.to).await
    }

    /// Whether a public source states the relationship, or it is inferred or hypothetical.
    async fn assertion(&self) -> Assertion {
        self.0.assertion
    }

    /// INFLUENCED only: how the learning influenced its target.
    async fn how(&self) -> Option<InfluenceHow> {
        self.0.influence.as_ref().map(|i| i.how)
    }

    /// INFLUENCED only: the condition of systems change it touched.
    async fn system_condition(&self) -> Option<SystemCondition> {
        self.0.influence.as_ref().map(|i| i.system_condition)
    }

    /// INFLUENCED only: when the influence happened.
    async fn on(&self) -> Option<Date> {
        self.0.influence.as_ref().map(|i| Date(i.on))
    }

    /// INFLUENCED only: the contribution claim, in words.
    async fn contribution(&self) -> Option<String> {
        self.0.influence.as_ref().and_then(|i| i.contribution.clone())
    }

    /// INFLUENCED only: how strong the evidence is.
    async fn strength(&self) -> Option<Strength> {
        self.0.influence.as_ref().map(|i| i.strength)
    }

    /// INFLUENCED only: the sources behind the claim.
    async fn sources(&self, ctx: &Context<'_>) -> Result<Vec<SourceNode>> {
        sources_of(ctx, &self.0).await
    }

    /// CITES only: the words quoted.
    async fn quote(&self) -> Option<String> {
        self.0.citation.as_ref().and_then(|c| c.quote.clone())
    }

    /// CITES only: where in the source.
    async fn locator(&self) -> Option<String> {
        self.0.citation.as_ref().and_then(|c| c.locator.clone())
    }
}

/// A node citing a source, with the quote and the place in it.
pub struct Citation(Edge);

impl Citation {
    pub(super) async fn of(ctx: &Context<'_>, id: &NodeId, direction: Direction) -> Result<Vec<Citation>> {
        let edges = edges_of(ctx, id, direction).await?;
        Ok(edges.iter().filter(|e| e.kind == RelationshipKind::Cites).map(|e| Citation(e.clone())).collect())
    }
}

#[Object]
impl Citation {
    /// The node that cites.
    async fn node(&self, ctx: &Context<'_>) -> Result<NodeInterface> {
        must_load(ctx, &self.0.from).await
    }

    async fn source(&self, ctx: &Context<'_>) -> Result<Option<SourceNode>> {
        Ok(load_node(ctx, &self.0.to).await?.map(SourceNode))
    }

    async fn quote(&self) -> Option<String> {
        self.0.citation.as_ref().and_then(|c| c.quote.clone())
    }

    async fn locator(&self) -> Option<String> {
        self.0.citation.as_ref().and_then(|c| c.locator.clone())
    }

    async fn assertion(&self) -> Assertion {
        self.0.assertion
    }
}

/// Influences of one node, oldest first, in pages.
#[derive(SimpleObject)]
pub struct InfluenceConnection {
    pub edges: Vec<InfluenceEdge>,
    pub page_info: PageInfo,
    /// How many influences there are in all.
    pub total_count: i32,
}

/// One influence: a learning, what it influenced, and the claim's properties.
pub struct InfluenceEdge {
    cursor: String,
    edge: Edge,
    /// The end the field looks at: the target for `influences`, the learning for `influencedBy`.
    node: NodeId,
}

impl InfluenceConnection {
    pub(super) async fn load(
        ctx: &Context<'_>,
        id: &NodeId,
        direction: Direction,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<InfluenceConnection> {
        let max_page = i32::from(super::limits::limits(ctx).max_page_size);
        let first = first.unwrap_or(max_page);
        if !(0..=max_page).contains(&first) {
            return Err(super::limits::over_limit("first", "max-page-size", 0, max_page as u64));
        }
        let edges = edges_of(ctx, id, direction).await?;
        let mut influences: Vec<&Edge> = edges.iter().filter(|e| e.kind == RelationshipKind::Influenced).collect();
        let key = |e: &Edge| (e.influence.as_ref().map(|i| i.on), far_end(e, direction).to_string());
        influences.sort_by_key(|e| key(e));
        let start = match after {
            None => 0,
            Some(cursor) => URL_SAFE_NO_PAD
                .decode(cursor.as_bytes())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .and_then(|s| s.parse::<usize>().ok())
                .and_then(|n| n.checked_add(1))
                .ok_or_else(|| bad_input("after", "is not a cursor this connection gave"))?,
        };
        let total = influences.len();
        let page: Vec<InfluenceEdge> = influences
            .into_iter()
            .enumerate()
            .skip(start)
            .take(first as usize)
            .map(|(i, e)| InfluenceEdge {
                cursor: URL_SAFE_NO_PAD.encode(i.to_string()),
                node: far_end(e, direction).clone(),
                edge: e.clone(),
            })
            .collect();
        let page_info = PageInfo {
            has_previous_page: start > 0,
            has_next_page: start + page.len() < total,
            start_cursor: page.first().map(|e| e.cursor.clone()),
            end_cursor: page.last().map(|e| e.cursor.clone()),
        };
        Ok(InfluenceConnection { edges: page, page_info, total_count: total as i32 })
    }
}

#[Object]
impl InfluenceEdge {
    async fn cursor(&self) -> &str {
        &self.cursor
    }

    /// The other end: what was influenced, or the learning that influenced.
    async fn node(&self, ctx: &Context<'_>) -> Result<NodeInterface> {
        must_load(ctx, &self.node).await
    }

    /// The learning that influenced.
    async fn learning(&self, ctx: &Context<'_>) -> Result<Option<LearningNode>> {
        Ok(load_node(ctx, &self.edge.from).await?.map(LearningNode))
    }

    /// What was influenced.
    async fn target(&self, ctx: &Context<'_>) -> Result<NodeInterface> {
        must_load(ctx, &self.edge.to).await
    }

    async fn how(&self) -> Option<InfluenceHow> {
        self.edge.influence.as_ref().map(|i| i.how)
    }

    async fn system_condition(&self) -> Option<SystemCondition> {
        self.edge.influence.as_ref().map(|i| i.system_condition)
    }

    async fn on(&self) -> Option<Date> {
        self.edge.influence.as_ref().map(|i| Date(i.on))
    }

    async fn contribution(&self) -> Option<String> {
        self.edge.influence.as_ref().and_then(|i| i.contribution.clone())
    }

    async fn strength(&self) -> Option<Strength> {
        self.edge.influence.as_ref().map(|i| i.strength)
    }

    async fn assertion(&self) -> Assertion {
        self.edge.assertion
    }

    async fn sources(&self, ctx: &Context<'_>) -> Result<Vec<SourceNode>> {
        sources_of(ctx, &self.edge).await
    }
}
