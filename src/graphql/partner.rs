//! The partner protocol's serving side (`docs/federation.md`): what this
//! instance answers when a partner calls it with a token this instance issued,
//! and the asking side's report of what it could not reach. Partners read
//! through this instance's own rules of visibility, as the member the token
//! names, and never through its own partners: nothing is fetched on someone
//! else's behalf.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use async_graphql::{Context, ErrorExtensions, ID, InputObject, Json, Object, Response, Result, SimpleObject};
use serde_json::Value;

use crate::domain::{Audience, Caller, Edge, EdgeRecord, Node, NodeId, NodeKind, RelationshipKind};
use crate::partner::{MAX_IDS_PER_REQUEST, PROTOCOL, Report, Unreachable, UnreachableReason};
use crate::store::traverse::{TraceDirection, visible_edge, visible_node};
use crate::store::{Direction, GraphStore as _, ListQuery, NodeFilter, OrderField, Store, Visible};

use super::error::{bad_input, to_gql};
use super::limits::limits;
use super::scalars::Date;

/// Who this instance is, for partners.
#[derive(SimpleObject)]
pub struct PartnerInfo {
    /// The protocol this instance speaks: `pvgraph-partner/1`.
    protocol: String,
    /// The organisations whose nodes this instance holds, by slug.
    organisations: Vec<String>,
    /// The deepest walk it makes for a partner.
    max_depth: i32,
    /// The most nodes one walk returns.
    max_nodes: i32,
}

/// A walk a partner asks for, from ids it reached, in this instance's part of the graph.
#[derive(InputObject)]
pub struct PartnerWalkInput {
    /// Where to start: ids of this instance, or of others that its relationships may point at.
    ids: Vec<ID>,
    direction: TraceDirection,
    via: Option<Vec<RelationshipKind>>,
    as_of: Option<Date>,
    /// Levels of nodes to expand, the starting ids being the first.
    depth: i32,
    /// How many nodes the asker can still take.
    max_nodes: i32,
    /// The time the asker can still wait, in milliseconds.
    budget_ms: i32,
}

/// This instance's part of a partner's walk.
#[derive(SimpleObject, Default)]
pub struct PartnerWalk {
    /// This instance's nodes the walk reached, as seed-format records.
    nodes: Vec<Json<Value>>,
    /// Every relationship of every expanded id, the way asked, as seed-format records; their
    /// other end may be another instance's id.
    edges: Vec<Json<Value>>,
    /// The ids whose relationships that way are all in `edges`.
    expanded: Vec<ID>,
    /// Why the walk stopped short, if it did.
    truncation: Vec<String>,
}

#[derive(Default)]
pub struct PartnerQuery;

#[Object]
impl PartnerQuery {
    /// For partners: who this instance is and what it allows.
    async fn partner_info(&self, ctx: &Context<'_>) -> Result<PartnerInfo> {
        let store = partner_view(ctx)?;
        let query = ListQuery {
            kind: NodeKind::Organisation,
            filter: NodeFilter::default(),
            order: OrderField::Id,
            descending: false,
            after: None,
            before: None,
            limit: 10_000,
            from_end: false,
        };
        let organisations = store.list(&query).await.map_err(to_gql)?;
        let limits = limits(ctx);
        Ok(PartnerInfo {
            protocol: PROTOCOL.to_owned(),
            organisations: organisations.iter().map(|n| n.organisation().to_owned()).collect(),
            max_depth: limits.max_trace_depth as i32,
            max_nodes: limits.max_trace_nodes as i32,
        })
    }

    /// For partners: this instance's nodes among `ids`, as the calling partner may see them, as
    /// seed-format records. An id left out is one it does not have or does not share.
    async fn partner_nodes(&self, ctx: &Context<'_>, ids: Vec<ID>) -> Result<Vec<Json<Value>>> {
        let store = partner_view(ctx)?;
        let ids = parse_ids(&ids)?;
        let nodes = store.nodes(&ids).await.map_err(to_gql)?;
        Ok(nodes.iter().map(record).collect())
    }

    /// For partners: a walk in this instance's part of the graph, within the asker's caps and
    /// this instance's own; relationships that lead to other instances' ids end it there.
    async fn partner_walk(&self, ctx: &Context<'_>, input: PartnerWalkInput) -> Result<PartnerWalk> {
        let store = partner_view(ctx)?;
        let limits = limits(ctx);
        let mut answer = PartnerWalk::default();
        let mut depth = input.depth.max(1) as u32;
        if depth > limits.max_trace_depth + 1 {
            depth = limits.max_trace_depth + 1;
            answer.truncation.push(format!("walked at most {depth} levels (this instance's --max-trace-depth)"));
        }
        let max_nodes = (input.max_nodes.max(0) as usize).min(limits.max_trace_nodes as usize);
        let budget = Duration::from_millis(input.budget_ms.max(0) as u64).min(limits.request_timeout());
        let walk = Walk {
            store: &store,
            everything: &ctx.data_unchecked::<super::Unfiltered>().0,
            direction: input.direction,
            via: input.via.unwrap_or_default(),
            as_of: input.as_of.map(|d| d.0),
        };
        walk.run(parse_ids(&input.ids)?, depth, max_nodes, Instant::now() + budget, &mut answer)
            .await
            .map_err(to_gql)?;
        Ok(answer)
    }
}

/// The store as the calling partner sees it: this instance's own data only, under its rules.
fn partner_view(ctx: &Context<'_>) -> Result<Visible> {
    let caller = ctx.data_unchecked::<Caller>();
    if caller.member().is_none() {
        return Err(to_gql(crate::domain::Error::forbidden(
            "partner operations need a token that this instance issued to the partner",
        )));
    }
    Ok(Visible::new(ctx.data_unchecked::<super::Unfiltered>().0.clone(), caller.clone()))
}

fn parse_ids(ids: &[ID]) -> Result<Vec<NodeId>> {
    if ids.len() > MAX_IDS_PER_REQUEST {
        return Err(bad_input("ids", format!("at most {MAX_IDS_PER_REQUEST} ids are taken at once")));
    }
    let mut ids = ids.iter().map(|id| NodeId::parse(id)).collect::<crate::domain::Result<Vec<_>>>().map_err(to_gql)?;
    ids.sort();
    ids.dedup();
    Ok(ids)
}

fn record(node: &Node) -> Json<Value> {
    Json(Value::Object(node.to_record()))
}

fn edge_record(edge: &Edge) -> Json<Value> {
    Json(Value::Object(EdgeRecord::from_edge(edge).into_json()))
}

struct Walk<'a> {
    store: &'a Visible,
    everything: &'a Store,
    direction: TraceDirection,
    via: Vec<RelationshipKind>,
    as_of: Option<chrono::NaiveDate>,
}

impl Walk<'_> {
    /// Breadth first from `seeds`, `depth` levels, each level's relationships in one lookup.
    async fn run(
        &self,
        seeds: Vec<NodeId>,
        depth: u32,
        max_nodes: usize,
        deadline: Instant,
        answer: &mut PartnerWalk,
    ) -> crate::domain::Result<()> {
        let audience = self.store.audience().clone();
        let mut known: HashSet<NodeId> = HashSet::new();
        for node in self.store.nodes(&seeds).await? {
            if visible_node(&node, self.as_of, &audience) {
                known.insert(node.id.clone());
                answer.nodes.push(record(&node));
            }
        }
        let mut frontier = seeds;
        let mut seen_edges = HashSet::new();
        for _ in 0..depth {
            if frontier.is_empty() {
                break;
            }
            if Instant::now() >= deadline {
                answer.truncation.push("the asker's time budget was spent".into());
                break;
            }
            let mut fresh: Vec<NodeId> = Vec::new();
            let mut found: Vec<Edge> = Vec::new();
            for &step in self.direction.steps() {
                for edge in self.edges(&frontier, step, &audience).await? {
                    if !visible_edge(&edge, &self.via, self.as_of) {
                        continue;
                    }
                    let end = if step == Direction::Out { &edge.to } else { &edge.from };
                    if !known.contains(end) {
                        fresh.push(end.clone());
                    }
                    found.push(edge);
                }
            }
            answer.expanded.extend(frontier.iter().map(|id| ID(id.to_string())));
            fresh.sort();
            fresh.dedup();
            // Fresh ends are this instance's nodes (the walk goes on through them) or other
            // instances' ids (the walk ends there; the asker follows them).
            let mut loaded = self.store.nodes(&fresh).await?;
            let gone: HashSet<NodeId> =
                loaded.iter().filter(|n| !visible_node(n, self.as_of, &audience)).map(|n| n.id.clone()).collect();
            loaded.retain(|n| !gone.contains(&n.id));
            let room = max_nodes.saturating_sub(known.len());
            if loaded.len() > room {
                loaded.truncate(room);
                answer.truncation.push(format!("stopped at {max_nodes} nodes"));
            }
            frontier = Vec::new();
            for node in loaded {
                known.insert(node.id.clone());
                frontier.push(node.id.clone());
                answer.nodes.push(record(&node));
            }
            for edge in found {
                let key = (edge.from.clone(), edge.kind, edge.to.clone());
                if !gone.contains(&edge.from) && !gone.contains(&edge.to) && seen_edges.insert(key) {
                    answer.edges.push(edge_record(&edge));
                }
            }
            if !answer.truncation.is_empty() {
                break;
            }
        }
        Ok(())
    }

    /// This instance's relationships of these ids that way, both ends visible, and those to other
    /// instances' ids whose end here is visible.
    async fn edges(&self, ids: &[NodeId], step: Direction, audience: &Audience) -> crate::domain::Result<Vec<Edge>> {
        let mut edges = self.store.edges(ids, step).await?;
        let across = self.everything.foreign_edges(ids, step).await?;
        if across.is_empty() {
            return Ok(edges);
        }
        let mut ends: Vec<NodeId> = across.iter().flat_map(|e| [e.from.clone(), e.to.clone()]).collect();
        ends.sort();
        ends.dedup();
        let here = self.everything.nodes(&ends).await?;
        let held: HashSet<&NodeId> = here.iter().map(|n| &n.id).collect();
        let shown: HashSet<&NodeId> = here.iter().filter(|n| audience.sees_node(n)).map(|n| &n.id).collect();
        // The end held here must be shown; the other end is not held here at all.
        edges.extend(across.into_iter().filter(|e| {
            let (from, to) = (held.contains(&e.from), held.contains(&e.to));
            (from && !to && shown.contains(&e.from)) || (to && !from && shown.contains(&e.to))
        }));
        Ok(edges)
    }
}

/// The error for a partner's node that this request could not have because the partner could
/// not be asked; `None` when the partner answered (a node it does not share is simply not there).
pub fn unreachable_node(ctx: &Context<'_>, id: &NodeId) -> Option<async_graphql::Error> {
    let entry = ctx.data_opt::<Report>()?.about(id)?;
    (entry.reason != UnreachableReason::NotShared).then(|| unreachable_error(&entry))
}

/// The code and extensions of an error for a field that is nothing but an unreachable partner's node.
fn unreachable_error(entry: &Unreachable) -> async_graphql::Error {
    let code = match entry.reason {
        UnreachableReason::Unauthorised | UnreachableReason::Refused => "PARTNER_REFUSED",
        _ => "PARTNER_UNAVAILABLE",
    };
    async_graphql::Error::new(format!("partner {} could not be reached: {}", entry.organisation, entry.message))
        .extend_with(|_, ext| {
            ext.set("code", code);
            ext.set("partner", entry.organisation.as_str());
            ext.set("reason", entry.reason.as_str());
        })
}

/// When a request could not reach some partners, its response says so in
/// `extensions.unreachable`, whichever fields needed them.
pub fn report_unreachable(response: Response, report: &Report) -> Response {
    let entries = report.entries();
    if entries.is_empty() {
        return response;
    }
    let value = async_graphql::Value::from_json(serde_json::json!(
        entries
            .iter()
            .map(|u| serde_json::json!({
                "organisation": u.organisation,
                "reason": u.reason.as_str(),
                "ids": u.ids.iter().map(|id| id.as_str()).collect::<Vec<_>>(),
                "message": u.message,
            }))
            .collect::<Vec<_>>()
    ));
    match value {
        Ok(value) => response.extension("unreachable", value),
        Err(_) => response,
    }
}
