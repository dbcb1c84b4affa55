//! The analyst's questions: trace, paths, impact, the value funnel, search,
//! cross-organisation influence and the time it takes to embed a learning.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use async_graphql::{Context, ID, Object, Result, SimpleObject};

use crate::domain::{
    Assertion, Details, Edge, Embedding, InfluenceHow, Node, NodeId, NodeKind, RelationshipKind, Strength,
    SystemCondition,
};
use crate::store::traverse::TraceDirection;
use crate::store::{Direction, PathRequest, SearchRequest, Store, TraceRequest};

use super::error::{bad_input, parse_id, to_gql};
use super::limits::{limits, over_limit};
use super::links::Relationship;
use super::nodes::{ExperimentNode, LearningNode, NodeInterface, PrincipleNode, ValueNode, load_node, wrap};
use super::scalars::Date;

const DEFAULT_TRACE_DEPTH: i32 = 3;

fn store<'a>(ctx: &Context<'a>) -> &'a Store {
    ctx.data_unchecked::<Store>()
}

/// A trace or path depth, within the server's `--max-trace-depth`.
fn depth(ctx: &Context<'_>, field: &str, asked: Option<i32>, default: i32) -> Result<u32> {
    let max = limits(ctx).max_trace_depth;
    // A default deeper than the server allows gives way to the limit; an asked depth does not.
    let depth = asked.unwrap_or_else(|| default.min(max as i32));
    if !(1..=max as i32).contains(&depth) {
        return Err(over_limit(field, "max-trace-depth", 1, max.into()));
    }
    Ok(depth as u32)
}

/// A list's `first`, within the server's `--max-page-size`.
fn list_size(ctx: &Context<'_>, first: i32) -> Result<usize> {
    let max = limits(ctx).max_page_size;
    if !(1..=i32::from(max)).contains(&first) {
        return Err(over_limit("first", "max-page-size", 1, max.into()));
    }
    Ok(first as usize)
}

/// A trace request with the server's node cap.
fn trace_request(ctx: &Context<'_>, from: NodeId, direction: TraceDirection, max_depth: u32) -> TraceRequest {
    TraceRequest {
        from,
        direction,
        max_depth,
        via: Vec::new(),
        kinds: Vec::new(),
        as_of: None,
        max_nodes: limits(ctx).max_trace_nodes as usize,
        // The request's store (`store::Visible`) puts in the caller's audience.
        audience: Default::default(),
    }
}

/// The subgraph reachable from one node.
pub struct TraceResult(crate::store::Trace);

/// A node reached by a trace, and how many steps from the start.
#[derive(SimpleObject)]
pub struct TraceNode {
    pub node: NodeInterface,
    pub depth: i32,
}

#[Object]
impl TraceResult {
    /// The node the trace started from.
    async fn start(&self) -> NodeInterface {
        wrap(Arc::new(self.0.nodes[0].0.clone()))
    }

    /// Every node reached (of the listed kinds, when `kinds` was given), with its depth, nearest
    /// first; the start comes first, at depth 0.
    async fn nodes(&self) -> Vec<TraceNode> {
        self.0.listed_nodes().map(|(n, d)| TraceNode { node: wrap(Arc::new(n.clone())), depth: *d as i32 }).collect()
    }

    /// Every relationship followed between listed nodes.
    async fn edges(&self) -> Vec<Relationship> {
        self.0.listed_edges().cloned().map(Relationship).collect()
    }

    /// For each listed node, the shortest path the trace found to it, through any kind of node.
    async fn paths(&self) -> Vec<PathResult> {
        let nodes: HashMap<&NodeId, &Node> = self.0.nodes.iter().map(|(n, _)| (&n.id, n)).collect();
        self.0
            .listed_nodes()
            .skip(1)
            .map(|(n, _)| {
                let edges = self.0.path_to(&n.id);
                let mut ids = vec![self.0.nodes[0].0.id.clone()];
                for edge in &edges {
                    let last = ids.last().cloned().unwrap_or_else(|| edge.from.clone());
                    ids.push(if edge.from == last { edge.to.clone() } else { edge.from.clone() });
                }
                let path_nodes = ids.iter().filter_map(|id| nodes.get(id).map(|n| (*n).clone())).collect();
                PathResult { nodes: path_nodes, edges }
            })
            .collect()
    }

    /// Whether a cap cut the trace short: `maxDepth` with more to show beyond it, or the server's
    /// node cap (`--max-trace-nodes`) with a node left out that the trace could have shown. The
    /// cap counts the nodes shown; nodes the caller may not see, or that did not exist yet on
    /// `asOf`, take no room, but a trace passes over no more of them than the cap and stops when
    /// it would need to, as it could not rule out a node to show beyond them.
    async fn truncated(&self) -> bool {
        !self.0.truncated.is_empty()
    }

    /// Why the trace is incomplete, in words; empty when it is whole.
    async fn truncation(&self) -> &[String] {
        &self.0.truncated
    }

    /// Partners, or some of their nodes, that the trace could not follow into, and why; empty
    /// when it reached everything it led to.
    async fn unreachable(&self) -> &[crate::partner::Unreachable] {
        &self.0.unreachable
    }
}

/// One way from one node to another.
pub struct PathResult {
    nodes: Vec<Node>,
    edges: Vec<Edge>,
}

/// The weakest part of a chain of claims.
#[derive(SimpleObject)]
pub struct WeakestLink {
    /// The lowest strength of any influence on the path; null when the path has none.
    pub strength: Option<Strength>,
    /// The least certain assertion of any step.
    pub assertion: Assertion,
    /// Whether any step is INFERRED or HYPOTHETICAL rather than SOURCED.
    pub speculative: bool,
}

fn weakest(edges: &[Edge]) -> WeakestLink {
    let strength = edges.iter().filter_map(|e| e.influence.as_ref().map(|i| i.strength)).max();
    let assertion = edges.iter().map(|e| e.assertion).max().unwrap_or(Assertion::Sourced);
    WeakestLink { strength, assertion, speculative: assertion != Assertion::Sourced }
}

#[Object(name = "Path")]
impl PathResult {
    /// How many relationships the path has.
    async fn length(&self) -> i32 {
        self.edges.len() as i32
    }

    /// The nodes along the path, start to end.
    async fn nodes(&self) -> Vec<NodeInterface> {
        self.nodes.iter().cloned().map(|n| wrap(Arc::new(n))).collect()
    }

    /// The relationships along the path, in order, with their properties.
    async fn edges(&self) -> Vec<Relationship> {
        self.edges.iter().cloned().map(Relationship).collect()
    }

    /// The path's weakest strength and least certain assertion.
    async fn weakest_link(&self) -> WeakestLink {
        weakest(&self.edges)
    }
}

/// A node that matched a search.
#[derive(SimpleObject)]
pub struct SearchHit {
    pub node: NodeInterface,
    /// Relevance (bm25); higher is better.
    pub score: f64,
    /// The matching words in context, matches in [brackets].
    pub snippet: String,
}

#[derive(SimpleObject)]
pub struct KindCount {
    pub kind: NodeKind,
    pub count: i32,
}

#[derive(SimpleObject)]
pub struct HowCount {
    pub how: InfluenceHow,
    pub count: i32,
}

#[derive(SimpleObject)]
pub struct ConditionCount {
    pub system_condition: SystemCondition,
    pub count: i32,
}

/// What one learning reached downstream, through influences and the experiments they informed.
#[derive(SimpleObject)]
pub struct Impact {
    pub learning: LearningNode,
    /// How many nodes it reached, directly or further on.
    pub reached: i32,
    pub by_kind: Vec<KindCount>,
    pub by_how: Vec<HowCount>,
    pub by_system_condition: Vec<ConditionCount>,
    /// Every influence in the reach, oldest first.
    pub timeline: Vec<Relationship>,
    /// Whether a cap cut the reach short.
    pub truncated: bool,
}

/// One step of a value's funnel.
#[derive(SimpleObject)]
pub struct FunnelStage {
    pub stage: String,
    pub count: i32,
    /// This stage's count over the previous stage's; null for the first stage or after an empty one.
    pub conversion: Option<f64>,
}

/// From a value to embedded learnings: where does the funnel leak?
#[derive(SimpleObject)]
pub struct ValueFunnel {
    pub value: ValueNode,
    pub stages: Vec<FunnelStage>,
    /// Principles upholding the value that guided no experiment.
    pub principles_without_experiments: Vec<PrincipleNode>,
    /// Experiments that produced no learning.
    pub experiments_without_learnings: Vec<ExperimentNode>,
    /// Learnings not yet embedded.
    pub learnings_not_embedded: Vec<LearningNode>,
}

/// An experiment, a learning it produced, and the days from the experiment's end to the learning's embedding.
#[derive(SimpleObject)]
pub struct EmbeddingLag {
    pub experiment: ExperimentNode,
    pub learning: LearningNode,
    pub ended_on: Date,
    pub embedded_on: Date,
    pub days: i32,
}

/// How long learnings take to be embedded after their experiments end.
#[derive(SimpleObject)]
pub struct EmbeddingLags {
    pub pairs: Vec<EmbeddingLag>,
    pub median_days: Option<f64>,
    pub mean_days: Option<f64>,
}

fn counted<K: Ord + Copy>(items: impl Iterator<Item = K>) -> Vec<(K, i32)> {
    let mut counts: BTreeMap<K, i32> = BTreeMap::new();
    for item in items {
        *counts.entry(item).or_default() += 1;
    }
    counts.into_iter().collect()
}

fn wrap_all<T>(nodes: Vec<Node>, f: fn(Arc<Node>) -> T) -> Vec<T> {
    let mut nodes = nodes;
    nodes.sort_by(|a, b| a.title.cmp(&b.title));
    nodes.into_iter().map(|n| f(Arc::new(n))).collect()
}

/// The other ends of the nodes' relationships of one kind one way.
async fn ends(store: &Store, ids: &[NodeId], direction: Direction, kind: RelationshipKind) -> Result<Vec<Edge>> {
    let edges = store.edges(ids, direction).await.map_err(to_gql)?;
    Ok(edges.into_iter().filter(|e| e.kind == kind).collect())
}

#[derive(Default)]
pub struct AnalysisQuery;

#[Object]
impl AnalysisQuery {
    /// The subgraph reachable from one node: its nodes with their depth, its relationships and the
    /// paths to each node. DOWNSTREAM follows relationships from cause to effect, UPSTREAM goes back.
    /// `kinds` limits the nodes listed (the walk still passes through others); `asOf` shows the graph
    /// as it stood that day. Depth defaults to 3 and is capped at 10; the trace shows at most the
    /// server's `--max-trace-nodes` nodes (see `TraceResult.truncated`).
    #[allow(clippy::too_many_arguments)]
    async fn trace(
        &self,
        ctx: &Context<'_>,
        from: ID,
        #[graphql(default_with = "TraceDirection::Downstream")] direction: TraceDirection,
        max_depth: Option<i32>,
        via: Option<Vec<RelationshipKind>>,
        kinds: Option<Vec<NodeKind>>,
        as_of: Option<Date>,
    ) -> Result<TraceResult> {
        let request = TraceRequest {
            via: via.unwrap_or_default(),
            kinds: kinds.unwrap_or_default(),
            as_of: as_of.map(|d| d.0),
            ..trace_request(
                ctx,
                parse_id("from", &from)?,
                direction,
                depth(ctx, "maxDepth", max_depth, DEFAULT_TRACE_DEPTH)?,
            )
        };
        store(ctx).trace(&request).await.map(TraceResult).map_err(to_gql)
    }

    /// The simple paths from one node to another, shortest first, each with its relationships and
    /// weakest link. An empty list when there is none within `maxDepth` (default 6, at most 10).
    #[allow(clippy::too_many_arguments)]
    async fn paths(
        &self,
        ctx: &Context<'_>,
        from: ID,
        to: ID,
        #[graphql(default_with = "TraceDirection::Downstream")] direction: TraceDirection,
        max_depth: Option<i32>,
        via: Option<Vec<RelationshipKind>>,
        #[graphql(default = 10)] first: i32,
    ) -> Result<Vec<PathResult>> {
        let first = list_size(ctx, first)?;
        let request = PathRequest {
            from: parse_id("from", &from)?,
            to: parse_id("to", &to)?,
            direction,
            max_depth: depth(ctx, "maxDepth", max_depth, 6)?,
            via: via.unwrap_or_default(),
            first,
            audience: Default::default(),
        };
        let found = store(ctx).paths(&request).await.map_err(to_gql)?;
        let nodes: HashMap<NodeId, Node> = found.nodes.into_iter().map(|n| (n.id.clone(), n)).collect();
        Ok(found
            .paths
            .into_iter()
            .map(|(ids, edges)| PathResult {
                nodes: ids.iter().filter_map(|id| nodes.get(id).cloned()).collect(),
                edges,
            })
            .collect())
    }

    /// Nodes whose words match, best first (bm25; a match in the title weighs ten times one
    /// elsewhere). Every word must appear; words match their stems (`reflect` finds
    /// `reflection`) and the last word may be the start of a word. Searched: title,
    /// description, statement, hypothesis, quote, definition, rationale, purpose, failure
    /// notes and publisher. Punctuation and search operators are read as plain words.
    async fn search(
        &self,
        ctx: &Context<'_>,
        text: String,
        kinds: Option<Vec<NodeKind>>,
        #[graphql(default = 20)] first: i32,
    ) -> Result<Vec<SearchHit>> {
        let first = list_size(ctx, first)?;
        if text.chars().count() > 500 {
            return Err(bad_input("text", "at most 500 characters"));
        }
        let request = SearchRequest { text, kinds: kinds.unwrap_or_default(), first, audience: Default::default() };
        let hits = store(ctx).search(&request).await.map_err(to_gql)?;
        Ok(hits
            .into_iter()
            .map(|h| SearchHit { node: wrap(Arc::new(h.node)), score: h.score, snippet: h.snippet })
            .collect())
    }

    /// A node and its neighbourhood (both ways, `depth` steps, default 1) as a W3C PROV-JSON
    /// document: experiments are activities, organisations agents, the rest entities.
    async fn provenance(
        &self,
        ctx: &Context<'_>,
        id: ID,
        #[graphql(default = 1)] depth: i32,
    ) -> Result<async_graphql::Json<serde_json::Value>> {
        let max_depth = self::depth(ctx, "depth", Some(depth), 1)?;
        let request = trace_request(ctx, parse_id("id", &id)?, TraceDirection::Both, max_depth);
        let store = store(ctx);
        let trace = store.trace(&request).await.map_err(to_gql)?;
        let mut nodes: Vec<Node> = trace.nodes.into_iter().map(|(n, _)| n).collect();
        let mut owners: Vec<NodeId> =
            nodes.iter().filter_map(|n| NodeId::organisation_node(n.organisation()).ok()).collect();
        owners.sort();
        owners.dedup();
        owners.retain(|o| !nodes.iter().any(|n| &n.id == o));
        nodes.extend(store.nodes(&owners).await.map_err(to_gql)?);
        Ok(async_graphql::Json(crate::prov::document(&nodes, &trace.edges)))
    }

    /// What one learning reached downstream: counted by kind, by how and by condition of systems
    /// change, with the timeline of its influences.
    async fn impact(&self, ctx: &Context<'_>, learning: ID) -> Result<Impact> {
        let id = parse_id("learning", &learning)?;
        if id.kind() != NodeKind::Learning {
            return Err(bad_input("learning", format!("{id} is not a learning")));
        }
        let max_depth = limits(ctx).max_trace_depth;
        let request = TraceRequest {
            via: vec![RelationshipKind::Influenced, RelationshipKind::Produced],
            ..trace_request(ctx, id, TraceDirection::Downstream, max_depth)
        };
        let trace = store(ctx).trace(&request).await.map_err(to_gql)?;
        let mut influences: Vec<Edge> =
            trace.edges.iter().filter(|e| e.kind == RelationshipKind::Influenced).cloned().collect();
        influences.sort_by_key(|e| e.influence.as_ref().map(|i| i.on));
        let reached = &trace.nodes[1..];
        Ok(Impact {
            learning: LearningNode(Arc::new(trace.nodes[0].0.clone())),
            reached: reached.len() as i32,
            by_kind: counted(reached.iter().map(|(n, _)| n.kind()))
                .into_iter()
                .map(|(kind, count)| KindCount { kind, count })
                .collect(),
            by_how: counted(influences.iter().filter_map(|e| e.influence.as_ref().map(|i| i.how)))
                .into_iter()
                .map(|(how, count)| HowCount { how, count })
                .collect(),
            by_system_condition: counted(
                influences.iter().filter_map(|e| e.influence.as_ref().map(|i| i.system_condition)),
            )
            .into_iter()
            .map(|(system_condition, count)| ConditionCount { system_condition, count })
            .collect(),
            truncated: !trace.truncated.is_empty(),
            timeline: influences.into_iter().map(Relationship).collect(),
        })
    }

    /// For a value: the principles that uphold it, the experiments they guided, the learnings those
    /// produced and how many were embedded, with what leaks out at each step.
    async fn value_funnel(&self, ctx: &Context<'_>, value: ID) -> Result<ValueFunnel> {
        let id = parse_id("value", &value)?;
        if id.kind() != NodeKind::Value {
            return Err(bad_input("value", format!("{id} is not a value")));
        }
        let store = store(ctx);
        let value = load_node(ctx, &id).await?.ok_or_else(|| to_gql(crate::domain::Error::no_node(&id)))?;
        let principle_ids: Vec<NodeId> =
            ends(store, &[id], Direction::In, RelationshipKind::Upholds).await?.into_iter().map(|e| e.from).collect();
        let guided = ends(store, &principle_ids, Direction::In, RelationshipKind::GuidedBy).await?;
        let mut experiment_ids: Vec<NodeId> = guided.iter().map(|e| e.from.clone()).collect();
        experiment_ids.sort();
        experiment_ids.dedup();
        let produced = ends(store, &experiment_ids, Direction::Out, RelationshipKind::Produced).await?;
        let mut learning_ids: Vec<NodeId> = produced.iter().map(|e| e.to.clone()).collect();
        learning_ids.sort();
        learning_ids.dedup();
        let all_ids: Vec<NodeId> = principle_ids.iter().chain(&experiment_ids).chain(&learning_ids).cloned().collect();
        let nodes = store.nodes(&all_ids).await.map_err(to_gql)?;
        let guiding: HashSet<&NodeId> = guided.iter().map(|e| &e.to).collect();
        let producing: HashSet<&NodeId> = produced.iter().map(|e| &e.from).collect();
        let embedded = |n: &Node| matches!(&n.details, Details::Learning(l) if l.embedding == Embedding::Embedded);
        let of_kind = |kind: NodeKind| nodes.iter().filter(move |n| n.kind() == kind);
        let embedded_count = of_kind(NodeKind::Learning).filter(|n| embedded(n)).count();
        let counts = [
            ("principles upholding the value", principle_ids.len()),
            ("experiments those principles guided", experiment_ids.len()),
            ("learnings those experiments produced", learning_ids.len()),
            ("learnings embedded", embedded_count),
        ];
        let stages = counts
            .iter()
            .enumerate()
            .map(|(i, (stage, count))| FunnelStage {
                stage: (*stage).to_owned(),
                count: *count as i32,
                conversion: i
                    .checked_sub(1)
                    .map(|p| counts[p].1)
                    .filter(|previous| *previous > 0)
                    .map(|previous| *count as f64 / previous as f64),
            })
            .collect();
        Ok(ValueFunnel {
            value: ValueNode(value),
            stages,
            principles_without_experiments: wrap_all(
                of_kind(NodeKind::Principle).filter(|n| !guiding.contains(&n.id)).cloned().collect(),
                PrincipleNode,
            ),
            experiments_without_learnings: wrap_all(
                of_kind(NodeKind::Experiment).filter(|n| !producing.contains(&n.id)).cloned().collect(),
                ExperimentNode,
            ),
            learnings_not_embedded: wrap_all(
                of_kind(NodeKind::Learning).filter(|n| !embedded(n)).cloned().collect(),
                LearningNode,
            ),
        })
    }

    /// Influences whose learning belongs to one organisation and whose target to another: how
    /// governments learn from each other. Narrow by the learning's or the target's organisation.
    async fn cross_organisation_influences(
        &self,
        ctx: &Context<'_>,
        from_organisation: Option<String>,
        to_organisation: Option<String>,
        #[graphql(default = 100)] first: i32,
    ) -> Result<Vec<Relationship>> {
        if !(1..=1000).contains(&first) {
            return Err(bad_input("first", "must be from 1 to 1000"));
        }
        let edges = store(ctx)
            .influences_across(from_organisation.as_deref(), to_organisation.as_deref(), first as usize)
            .await
            .map_err(to_gql)?;
        Ok(edges.into_iter().map(Relationship).collect())
    }

    /// For each learning embedded after an experiment that produced it ended: the days in between,
    /// one pair per experiment and learning (a learning from two experiments counts twice).
    /// Learnings embedded before their experiment ended, or without an `embeddedOn`, are left out.
    async fn embedding_lag(&self, ctx: &Context<'_>, organisation: Option<String>) -> Result<EmbeddingLags> {
        let store = store(ctx);
        let pairs = store.embedding_pairs(organisation.as_deref()).await.map_err(to_gql)?;
        let mut lags: Vec<EmbeddingLag> = pairs
            .into_iter()
            .filter_map(|(experiment, learning)| {
                let ended = match &experiment.details {
                    Details::Experiment(e) => e.ended_on?,
                    _ => return None,
                };
                let embedded = match &learning.details {
                    Details::Learning(l) => l.embedded_on?,
                    _ => return None,
                };
                // A learning embedded while its experiment still ran has no lag to measure.
                let days = (embedded - ended).num_days();
                if days < 0 {
                    return None;
                }
                Some(EmbeddingLag {
                    days: days as i32,
                    ended_on: Date(ended),
                    embedded_on: Date(embedded),
                    experiment: ExperimentNode(Arc::new(experiment)),
                    learning: LearningNode(Arc::new(learning)),
                })
            })
            .collect();
        lags.sort_by_key(|l| l.days);
        let days: Vec<f64> = lags.iter().map(|l| l.days as f64).collect();
        let median = match days.len() {
            0 => None,
            n if n % 2 == 1 => Some(days[n / 2]),
            n => Some((days[n / 2 - 1] + days[n / 2]) / 2.0),
        };
        let mean = (!days.is_empty()).then(|| days.iter().sum::<f64>() / days.len() as f64);
        Ok(EmbeddingLags { pairs: lags, median_days: median, mean_days: mean })
    }
}
