//! Traces and paths, written once over a backend's neighbour lookups. Each
//! step asks for a whole frontier at once, so a trace of depth d costs about
//! 2·d lookups whatever its size; cycles never loop because a node is visited
//! once; caps on depth, nodes and work say when they cut a result short.

use std::collections::{HashMap, HashSet};

use chrono::NaiveDate;

use crate::domain::{Audience, Edge, Error, Node, NodeId, NodeKind, RelationshipKind, Result};

use super::Direction;

/// The deepest trace or path the server allows by default (`--max-trace-depth`).
pub const MAX_DEPTH: u32 = 10;
/// How many nodes a trace returns at most by default (`--max-trace-nodes`).
pub const MAX_TRACE_NODES: usize = 5_000;
/// How many partial paths a path search may extend before it stops.
const MAX_PATH_WORK: usize = 200_000;

/// Which way a trace follows relationships.
#[derive(Clone, Copy, Debug, PartialEq, Eq, async_graphql::Enum)]
pub enum TraceDirection {
    /// Along relationships, from cause to effect.
    Downstream,
    /// Against them, from effect back to cause.
    Upstream,
    /// Both ways.
    Both,
}

impl TraceDirection {
    /// The ways a walk in this direction looks from each node.
    pub fn steps(self) -> &'static [Direction] {
        match self {
            TraceDirection::Downstream => &[Direction::Out],
            TraceDirection::Upstream => &[Direction::In],
            TraceDirection::Both => &[Direction::Out, Direction::In],
        }
    }

    pub fn reversed(self) -> TraceDirection {
        match self {
            TraceDirection::Downstream => TraceDirection::Upstream,
            TraceDirection::Upstream => TraceDirection::Downstream,
            TraceDirection::Both => TraceDirection::Both,
        }
    }
}

/// What a backend gives the traversals: batched lookups, nothing more.
#[async_trait::async_trait]
pub trait Neighbours: Send {
    async fn nodes(&mut self, ids: &[NodeId]) -> Result<Vec<Node>>;
    async fn edges(&mut self, ids: &[NodeId], direction: Direction) -> Result<Vec<Edge>>;
    /// Says how many levels of nodes the walk may still expand, the next lookup's being the
    /// first, so lookups that reach far (a partner's instance) can fetch ahead.
    fn reach(&mut self, _levels: u32) {}

    /// Which of these ids are nodes the audience may see. This default reads the nodes whole;
    /// a backend may answer from only what visibility needs.
    async fn seen(&mut self, ids: &[NodeId], audience: &Audience) -> Result<HashSet<NodeId>> {
        Ok(self.nodes(ids).await?.into_iter().filter(|n| audience.sees_node(n)).map(|n| n.id).collect())
    }
}

#[derive(Clone, Debug)]
pub struct TraceRequest {
    pub from: NodeId,
    pub direction: TraceDirection,
    pub max_depth: u32,
    /// Follow only these relationship kinds (all, when empty).
    pub via: Vec<RelationshipKind>,
    /// List only nodes of these kinds (all, when empty); the walk still passes through others.
    pub kinds: Vec<NodeKind>,
    /// Hide nodes that did not exist yet on this day (see `Node::existed_since`) and influences
    /// dated after it.
    pub as_of: Option<NaiveDate>,
    /// Walk only through nodes this audience may see; a start it cannot see is not found.
    pub audience: Audience,
    /// How many nodes to reach at most (the start included).
    pub max_nodes: usize,
}

/// The reachable subgraph.
#[derive(Clone, Debug, Default)]
pub struct Trace {
    /// The start node first, then every reached node with its depth, nearest first.
    pub nodes: Vec<(Node, u32)>,
    /// Every relationship followed between reached nodes.
    pub edges: Vec<Edge>,
    /// For each reached node but the start, the relationship it was first reached by.
    pub parents: HashMap<NodeId, Edge>,
    /// Why the result is incomplete, if a cap cut it short.
    pub truncated: Vec<String>,
    /// The node kinds to list (all, when empty); `nodes` keeps every node so paths stay whole.
    pub kinds: Vec<NodeKind>,
    /// Partners, or some of their nodes, that the walk could not follow into.
    pub unreachable: Vec<crate::partner::Unreachable>,
}

impl Trace {
    fn is_listed(&self, node: &Node) -> bool {
        self.kinds.is_empty() || node.id == self.nodes[0].0.id || self.kinds.contains(&node.kind())
    }

    /// The nodes to show: the start and every reached node of the listed kinds.
    pub fn listed_nodes(&self) -> impl Iterator<Item = &(Node, u32)> {
        self.nodes.iter().filter(|(n, _)| self.is_listed(n))
    }

    /// The relationships between listed nodes.
    pub fn listed_edges(&self) -> impl Iterator<Item = &Edge> {
        let listed: HashSet<&NodeId> = self.listed_nodes().map(|(n, _)| &n.id).collect();
        self.edges.iter().filter(move |e| listed.contains(&e.from) && listed.contains(&e.to))
    }

    /// The path from the start to `id` along first-reached relationships.
    pub fn path_to(&self, id: &NodeId) -> Vec<Edge> {
        let mut path = Vec::new();
        let mut at = id;
        while let Some(edge) = self.parents.get(at) {
            at = if &edge.to == at { &edge.from } else { &edge.to };
            path.push(edge.clone());
            // Parents never form a cycle; this only bounds the walk should they ever.
            if path.len() > self.nodes.len() {
                break;
            }
        }
        path.reverse();
        path
    }
}

pub fn visible_node(node: &Node, as_of: Option<NaiveDate>, audience: &Audience) -> bool {
    audience.sees_node(node) && as_of.is_none_or(|day| node.existed_since() <= day)
}

pub fn visible_edge(edge: &Edge, via: &[RelationshipKind], as_of: Option<NaiveDate>) -> bool {
    let kind_ok = via.is_empty() || via.contains(&edge.kind);
    let date_ok = match (&edge.influence, as_of) {
        (Some(influence), Some(day)) => influence.on <= day,
        _ => true,
    };
    kind_ok && date_ok
}

fn far_end(edge: &Edge, step: Direction) -> &NodeId {
    match step {
        Direction::Out => &edge.to,
        Direction::In => &edge.from,
    }
}

type EdgeKey = (NodeId, RelationshipKind, NodeId);

fn key(edge: &Edge) -> EdgeKey {
    (edge.from.clone(), edge.kind, edge.to.clone())
}

/// Walks out from one node, breadth first.
pub async fn trace(store: &mut dyn Neighbours, request: &TraceRequest) -> Result<Trace> {
    let start = store
        .nodes(std::slice::from_ref(&request.from))
        .await?
        .pop()
        .filter(|n| request.audience.sees_node(n))
        .ok_or_else(|| Error::no_node(&request.from))?;
    if !visible_node(&start, request.as_of, &request.audience) {
        return Err(Error::NotFound(format!(
            "{} did not exist yet on {}",
            start.id,
            request.as_of.unwrap_or_default()
        )));
    }
    let mut depth_of: HashMap<NodeId, u32> = HashMap::from([(start.id.clone(), 0)]);
    let mut result = Trace { nodes: vec![(start.clone(), 0)], ..Trace::default() };
    let mut seen_edges: HashSet<EdgeKey> = HashSet::new();
    let mut frontier = vec![start.id.clone()];
    for depth in 1..=request.max_depth {
        if frontier.is_empty() {
            break;
        }
        // This frontier, the levels below it, and the last one's look beyond.
        store.reach(request.max_depth - depth + 2);
        let mut found: Vec<(Edge, Direction)> = Vec::new();
        for &step in request.direction.steps() {
            for edge in store.edges(&frontier, step).await? {
                if visible_edge(&edge, &request.via, request.as_of) {
                    found.push((edge, step));
                }
            }
        }
        // Backends return edges in their own order; sort so every backend answers alike.
        found.sort_by_key(|a| key(&a.0));
        let mut fresh: Vec<NodeId> = Vec::new();
        let mut fresh_set: HashSet<&NodeId> = HashSet::new();
        for (edge, step) in &found {
            let end = far_end(edge, *step);
            if !depth_of.contains_key(end) && fresh_set.insert(end) {
                fresh.push(end.clone());
            }
        }
        let room = request.max_nodes.saturating_sub(depth_of.len());
        if fresh.len() > room {
            fresh.truncate(room);
            result.truncated.push(format!("the trace stopped at {} nodes (--max-trace-nodes)", request.max_nodes));
        }
        let mut next = Vec::new();
        let mut loaded = store.nodes(&fresh).await?;
        // Keep the order edges were found in, so equal graphs give equal answers on every backend.
        let order: HashMap<&NodeId, usize> = fresh.iter().enumerate().map(|(i, id)| (id, i)).collect();
        loaded.sort_by_key(|n| order.get(&n.id).copied().unwrap_or(usize::MAX));
        for node in loaded {
            if visible_node(&node, request.as_of, &request.audience) {
                depth_of.insert(node.id.clone(), depth);
                next.push(node.id.clone());
                result.nodes.push((node, depth));
            }
        }
        for (edge, step) in found {
            let end = far_end(&edge, step).clone();
            if !depth_of.contains_key(&end) || !seen_edges.insert(key(&edge)) {
                continue;
            }
            if depth_of[&end] == depth && !result.parents.contains_key(&end) {
                result.parents.insert(end, edge.clone());
            }
            result.edges.push(edge);
        }
        frontier = next;
        if !result.truncated.is_empty() {
            break;
        }
    }
    if !frontier.is_empty() {
        // The last step's own relationships: those between reached nodes belong to the answer;
        // those leading further say whether the depth cap, not the graph, ended the walk.
        let mut beyond: Vec<NodeId> = Vec::new();
        store.reach(1);
        for &step in request.direction.steps() {
            for edge in store.edges(&frontier, step).await? {
                if !visible_edge(&edge, &request.via, request.as_of) {
                    continue;
                }
                let end = far_end(&edge, step);
                if !depth_of.contains_key(end) {
                    beyond.push(end.clone());
                } else if seen_edges.insert(key(&edge)) {
                    result.edges.push(edge);
                }
            }
        }
        beyond.sort();
        beyond.dedup();
        if result.truncated.is_empty()
            && !beyond.is_empty()
            && store.nodes(&beyond).await?.iter().any(|n| visible_node(n, request.as_of, &request.audience))
        {
            result.truncated.push(format!("maxDepth {} was reached; more lies beyond", request.max_depth));
        }
    }
    result.kinds = request.kinds.clone();
    Ok(result)
}

#[derive(Clone, Debug)]
pub struct PathRequest {
    pub from: NodeId,
    pub to: NodeId,
    pub direction: TraceDirection,
    pub max_depth: u32,
    pub via: Vec<RelationshipKind>,
    /// How many paths to return at most.
    pub first: usize,
    /// Step only through nodes this audience may see; an end it cannot see is not found.
    pub audience: Audience,
}

/// Simple paths between two nodes, shortest first.
#[derive(Clone, Debug, Default)]
pub struct Paths {
    /// Each path as its relationships in order, and the nodes along it.
    pub paths: Vec<(Vec<NodeId>, Vec<Edge>)>,
    /// Every node on any path.
    pub nodes: Vec<Node>,
    pub truncated: Vec<String>,
}

/// Finds simple paths: a backward walk from the target marks how far each node
/// is from it, then a depth-first search from the start only steps where the
/// target is still within reach, one path length at a time.
pub async fn paths(store: &mut dyn Neighbours, request: &PathRequest) -> Result<Paths> {
    let ends = store.nodes(&[request.from.clone(), request.to.clone()]).await?;
    for id in [&request.from, &request.to] {
        if !ends.iter().any(|n| &n.id == id && request.audience.sees_node(n)) {
            return Err(Error::no_node(id));
        }
    }
    let mut result = Paths::default();
    if request.from == request.to {
        return Ok(result);
    }
    // distance[v]: fewest steps from v to the target; forward[v]: steps from v that keep it in reach.
    let mut distance: HashMap<NodeId, u32> = HashMap::from([(request.to.clone(), 0)]);
    let mut forward: HashMap<NodeId, Vec<(NodeId, Edge)>> = HashMap::new();
    let mut frontier = vec![request.to.clone()];
    let back = request.direction.reversed();
    // Whether the audience may see a node, for each node looked at; both ends were checked above.
    let mut seen: HashMap<NodeId, bool> = HashMap::from([(request.to.clone(), true), (request.from.clone(), true)]);
    for depth in 1..=request.max_depth {
        if frontier.is_empty() {
            break;
        }
        store.reach(request.max_depth - depth + 1);
        let mut found: Vec<(NodeId, NodeId, Edge)> = Vec::new();
        for &step in back.steps() {
            for edge in store.edges(&frontier, step).await? {
                if !visible_edge(&edge, &request.via, None) {
                    continue;
                }
                let (here, there) = match step {
                    Direction::In => (edge.from.clone(), edge.to.clone()),
                    Direction::Out => (edge.to.clone(), edge.from.clone()),
                };
                found.push((here, there, edge));
            }
        }
        // Only nodes the audience may see are stepped through; each is looked at once.
        if request.audience != Audience::Everything {
            let mut fresh: Vec<NodeId> = found.iter().map(|(here, ..)| here.clone()).collect();
            fresh.retain(|id| !seen.contains_key(id));
            fresh.sort();
            fresh.dedup();
            let shown = store.seen(&fresh, &request.audience).await?;
            for id in fresh {
                let visible = shown.contains(&id);
                seen.insert(id, visible);
            }
            found.retain(|(here, ..)| seen[here]);
        }
        let mut next = Vec::new();
        for (here, there, edge) in found {
            forward.entry(here.clone()).or_default().push((there, edge));
            if !distance.contains_key(&here) {
                distance.insert(here.clone(), depth);
                next.push(here);
            }
        }
        frontier = next;
    }
    let Some(&shortest) = distance.get(&request.from) else { return Ok(result) };
    let mut work = 0usize;
    'lengths: for length in shortest..=request.max_depth {
        let mut stack: Vec<(NodeId, Vec<NodeId>, Vec<Edge>)> =
            vec![(request.from.clone(), vec![request.from.clone()], vec![])];
        while let Some((at, nodes, edges)) = stack.pop() {
            work += 1;
            if work > MAX_PATH_WORK {
                result.truncated.push("the path search stopped after exploring its work limit".into());
                break 'lengths;
            }
            if edges.len() as u32 == length || at == request.to {
                if at == request.to && edges.len() as u32 == length {
                    result.paths.push((nodes, edges));
                    if result.paths.len() >= request.first {
                        break 'lengths;
                    }
                }
                continue;
            }
            let left = length - edges.len() as u32 - 1;
            let mut steps: Vec<&(NodeId, Edge)> = forward.get(&at).map(|v| v.iter().collect()).unwrap_or_default();
            steps.sort_by(|a, b| b.0.cmp(&a.0));
            let mut taken: HashSet<EdgeKey> = HashSet::new();
            for (there, edge) in steps {
                let reachable = distance.get(there).is_some_and(|d| *d <= left);
                if !reachable || nodes.contains(there) || !taken.insert(key(edge)) {
                    continue;
                }
                let mut nodes = nodes.clone();
                nodes.push(there.clone());
                let mut edges = edges.clone();
                edges.push(edge.clone());
                stack.push((there.clone(), nodes, edges));
            }
        }
    }
    let mut ids: Vec<NodeId> = result.paths.iter().flat_map(|(nodes, _)| nodes.iter().cloned()).collect();
    ids.sort();
    ids.dedup();
    result.nodes = store.nodes(&ids).await?;
    Ok(result)
}
