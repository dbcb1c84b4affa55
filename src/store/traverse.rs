//! Traces and paths, written once over a backend's neighbour lookups. Each
//! step asks for a whole frontier at once, so a trace of depth d costs about
//! 2·d lookups whatever its size; cycles never loop because a node is visited
//! once; caps on depth, nodes and work say when they cut a result short.

use foldhash::{HashMap, HashMapExt as _, HashSet, HashSetExt as _};

use chrono::NaiveDate;

use crate::domain::{Audience, Edge, Error, Node, NodeId, NodeKind, RelationshipKind, Result};

use super::Direction;

/// The deepest trace or path the server allows by default (`--max-trace-depth`).
pub const MAX_DEPTH: u32 = 10;
/// How many nodes a trace returns at most by default (`--max-trace-nodes`).
pub const MAX_TRACE_NODES: usize = 5_000;
/// How many partial paths a path search may extend before it stops.
pub(crate) const MAX_PATH_WORK: usize = 200_000;
/// How many ids a walk's sets and maps hold before they first grow: a typical trace or path
/// search reaches some dozens of nodes, and a set grown from empty rehashes five or six times
/// on the way.
const FIRST_CAPACITY: usize = 64;

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

    /// The walk that takes only this one way.
    pub fn along(step: Direction) -> TraceDirection {
        match step {
            Direction::Out => TraceDirection::Downstream,
            Direction::In => TraceDirection::Upstream,
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

    /// The relationships of these ids that way whose far end is a node the audience may see,
    /// when the backend reads them in one lookup (`None`: it has no cheaper way than `edges`
    /// and then `seen`, which the walk then asks for itself). The near ends are taken as seen.
    async fn edges_seen(
        &mut self,
        _ids: &[NodeId],
        _direction: Direction,
        _audience: &Audience,
    ) -> Result<Option<Vec<Edge>>> {
        Ok(None)
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
    /// How many nodes to show at most (the start included); also how many nodes the walk may
    /// find and pass over unseen (see `first_shown`).
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

/// The end of a relationship found by looking `step` from its other end: `to` going out, `from`
/// coming in.
pub(crate) fn far_end(edge: &Edge, step: Direction) -> &NodeId {
    match step {
        Direction::Out => &edge.to,
        Direction::In => &edge.from,
    }
}

/// The end of a relationship that looking `step` starts from: `from` going out, `to` coming in.
pub(crate) fn near_end(edge: &Edge, step: Direction) -> &NodeId {
    match step {
        Direction::Out => &edge.from,
        Direction::In => &edge.to,
    }
}

type EdgeKey = (NodeId, RelationshipKind, NodeId);

fn key(edge: &Edge) -> EdgeKey {
    (edge.from.clone(), edge.kind, edge.to.clone())
}

/// The relationships of a trace's frontier that the trace follows (its directions, `via` and
/// `asOf`), each with the way it was found. Backends return relationships in their own order;
/// sorted by (from, kind, to), every backend answers alike.
async fn level_edges(
    store: &mut dyn Neighbours,
    frontier: &[NodeId],
    request: &TraceRequest,
) -> Result<Vec<(Edge, Direction)>> {
    let mut found: Vec<(Edge, Direction)> = Vec::new();
    for &step in request.direction.steps() {
        for edge in store.edges(frontier, step).await? {
            if visible_edge(&edge, &request.via, request.as_of) {
                found.push((edge, step));
            }
        }
    }
    found.sort_by(|(a, _), (b, _)| (&a.from, a.kind, &a.to).cmp(&(&b.from, b.kind, &b.to)));
    Ok(found)
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
    let mut depth_of: HashMap<NodeId, u32> = HashMap::with_capacity(FIRST_CAPACITY);
    depth_of.insert(start.id.clone(), 0);
    let parents = HashMap::with_capacity(FIRST_CAPACITY);
    let mut result = Trace { nodes: vec![(start.clone(), 0)], parents, ..Trace::default() };
    let mut seen_edges: HashSet<EdgeKey> = HashSet::with_capacity(FIRST_CAPACITY);
    // Nodes found and not shown (see `first_shown`): never looked up again.
    let mut hidden: HashSet<NodeId> = HashSet::new();
    let mut frontier = vec![start.id.clone()];
    for depth in 1..=request.max_depth {
        if frontier.is_empty() {
            break;
        }
        // This frontier, the levels below it, and the last one's look beyond.
        store.reach(request.max_depth - depth + 2);
        let found = level_edges(store, &frontier, request).await?;
        let mut fresh: Vec<NodeId> = Vec::new();
        let mut fresh_set: HashSet<&NodeId> = HashSet::new();
        for (edge, step) in &found {
            let end = far_end(edge, *step);
            if !depth_of.contains_key(end) && !hidden.contains(end) && fresh_set.insert(end) {
                fresh.push(end.clone());
            }
        }
        let room = request.max_nodes.saturating_sub(depth_of.len());
        let level = first_shown(store, &fresh, room, &mut hidden, request).await?;
        let mut next = Vec::with_capacity(level.shown.len());
        for node in level.shown {
            depth_of.insert(node.id.clone(), depth);
            next.push(node.id.clone());
            result.nodes.push((node, depth));
        }
        result.truncated.extend(level.cut);
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
        let found = level_edges(store, &frontier, request).await?;
        for (edge, step) in found {
            let end = far_end(&edge, step);
            if hidden.contains(end) {
                continue;
            } else if !depth_of.contains_key(end) {
                beyond.push(end.clone());
            } else if seen_edges.insert(key(&edge)) {
                result.edges.push(edge);
            }
        }
        beyond.sort();
        beyond.dedup();
        if result.truncated.is_empty() && !beyond.is_empty() && any_shown(store, &beyond, request).await? {
            result.truncated.push(format!("maxDepth {} was reached; more lies beyond", request.max_depth));
        }
    }
    result.kinds = request.kinds.clone();
    Ok(result)
}

/// The nodes of one level that a trace shows, and why it stops there, if it does.
struct Level {
    shown: Vec<Node>,
    cut: Option<String>,
}

/// The first `room` nodes of `ids` that the trace may show, in the order of `ids` (the order
/// edges were found in, so that equal graphs give equal answers on every backend). The ids after
/// them are looked at only until one the trace may show turns up: then the level, and the trace,
/// is cut short. Ids it may not show (another organisation's private nodes, nodes newer than
/// `asOf`, nodes not held here) take no room and go into `hidden`; to bound the work, a trace
/// passes over at most `max_nodes` of them, and is cut short should it need to pass over more,
/// as a node it may show could follow. The ids are read a chunk at a time: at least what could
/// still be shown plus one, at least twice the last chunk, and never more than could be used
/// before the budget runs out; one lookup when no node is hidden.
async fn first_shown(
    store: &mut dyn Neighbours,
    ids: &[NodeId],
    room: usize,
    hidden: &mut HashSet<NodeId>,
    request: &TraceRequest,
) -> Result<Level> {
    let mut shown: Vec<Node> = Vec::new();
    let mut at = 0;
    let mut chunk = 0;
    while at < ids.len() {
        // One more than fits: finding it says that the level is cut.
        let wanted = room - shown.len() + 1;
        let left = request.max_nodes.saturating_sub(hidden.len());
        chunk = wanted.max(2 * chunk).min(wanted + left).min(ids.len() - at);
        let part = &ids[at..at + chunk];
        at += chunk;
        let mut loaded: HashMap<NodeId, Node> =
            store.nodes(part).await?.into_iter().map(|n| (n.id.clone(), n)).collect();
        for id in part {
            match loaded.remove(id).filter(|n| visible_node(n, request.as_of, &request.audience)) {
                Some(node) if shown.len() < room => shown.push(node),
                Some(_) => {
                    let cut = format!("the trace stopped at {} nodes (--max-trace-nodes)", request.max_nodes);
                    return Ok(Level { shown, cut: Some(cut) });
                }
                None if hidden.len() < request.max_nodes => {
                    hidden.insert(id.clone());
                }
                None => {
                    let cut = format!(
                        "the trace stopped after passing over {} nodes it may not show (--max-trace-nodes)",
                        request.max_nodes
                    );
                    return Ok(Level { shown, cut: Some(cut) });
                }
            }
        }
    }
    Ok(Level { shown, cut: None })
}

/// Whether a trace could show any of these nodes.
async fn any_shown(store: &mut dyn Neighbours, ids: &[NodeId], request: &TraceRequest) -> Result<bool> {
    if request.as_of.is_none() {
        // Only who may see them matters, which the store answers without reading them whole.
        return Ok(!store.seen(ids, &request.audience).await?.is_empty());
    }
    Ok(store.nodes(ids).await?.iter().any(|n| visible_node(n, request.as_of, &request.audience)))
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

/// Finds simple paths. Two walks, one from each end, mark the relationships any path of at
/// most `max_depth` steps can take (see `meet`); a depth-first search over them then steps only
/// where the target is still within reach, one path length at a time, shortest first.
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
    let known = meet(store, request).await?;
    let (start, target) = (known.index[&request.from], known.index[&request.to]);
    let distance = known.distances_to(target);
    if distance[start] == UNREACHED {
        return Ok(result);
    }
    let mut work = 0usize;
    'lengths: for length in distance[start]..=request.max_depth {
        // Partial paths as the nodes and relationships (numbered) they went through.
        let mut stack: Vec<(Vec<usize>, Vec<usize>)> = vec![(vec![start], vec![])];
        while let Some((nodes, edges)) = stack.pop() {
            work += 1;
            if work > MAX_PATH_WORK {
                result.truncated.push("the path search stopped after exploring its work limit".into());
                break 'lengths;
            }
            let at = nodes[nodes.len() - 1];
            let steps = edges.len() as u32;
            if steps == length || at == target {
                if at == target && steps == length {
                    let ids = nodes.iter().map(|&n| known.ids[n].clone()).collect();
                    result.paths.push((ids, edges.iter().map(|&e| known.edges[e].clone()).collect()));
                    if result.paths.len() >= request.first {
                        break 'lengths;
                    }
                }
                continue;
            }
            let left = length - steps - 1;
            // Pushed last to first, so that the first step (see `Known::sort`) is tried first.
            for &(there, edge) in known.next[at].iter().rev() {
                if distance[there] > left || nodes.contains(&there) {
                    continue;
                }
                let mut nodes = nodes.clone();
                nodes.push(there);
                let mut edges = edges.clone();
                edges.push(edge);
                stack.push((nodes, edges));
            }
        }
    }
    let mut ids: Vec<NodeId> = result.paths.iter().flat_map(|(nodes, _)| nodes.iter().cloned()).collect();
    ids.sort();
    ids.dedup();
    result.nodes = store.nodes(&ids).await?;
    Ok(result)
}

/// The distance of a node from which the target cannot be reached.
const UNREACHED: u32 = u32::MAX;

/// Walks from both ends of a path search at once, each step expanding the end whose frontier is
/// smaller, until the levels expanded on the two sides add up to `max_depth` or one side has
/// nowhere left to go. The relationships found then hold every path of at most `max_depth`
/// steps: on such a path of length L, take the step from its i-th node v to the next, w. If the
/// start's side expanded k > i levels, it expanded v (no further than i from the start) and found
/// the step; otherwise the target's side expanded m = max_depth - k ≥ L - i levels, and with them
/// w (no further than L - i - 1 from the target), and found the step from its end. A side that
/// ran out of frontier expanded everything it can reach, so it found every step of every path.
async fn meet(store: &mut dyn Neighbours, request: &PathRequest) -> Result<Known> {
    let mut known = Known {
        index: HashMap::with_capacity(FIRST_CAPACITY),
        taken: HashSet::with_capacity(FIRST_CAPACITY),
        ..Known::default()
    };
    known.number(&request.from);
    known.number(&request.to);
    let mut sides =
        [Side::new(&request.from, request.direction, true), Side::new(&request.to, request.direction, false)];
    // Whether the audience may see a node, for each node looked at; both ends were checked.
    let mut seen: HashMap<NodeId, bool> =
        HashMap::from_iter([(request.from.clone(), true), (request.to.clone(), true)]);
    loop {
        let done = sides[0].levels + sides[1].levels;
        if done >= request.max_depth || sides.iter().any(|s| s.frontier.is_empty()) {
            break;
        }
        // The smaller frontier is the cheaper to expand; on a tie, the start's.
        let side = if sides[1].frontier.len() < sides[0].frontier.len() { &mut sides[1] } else { &mut sides[0] };
        // At most this many levels are left to this side, should the other expand no more.
        store.reach(request.max_depth - done);
        side.expand(store, request, &mut seen, &mut known).await?;
    }
    known.sort();
    Ok(known)
}

/// One end of a path search and the walk out from it.
struct Side {
    /// The ways the walk looks from each node.
    steps: &'static [Direction],
    /// Whether this is the start's side, which walks the way paths run (the target's walks back).
    forward: bool,
    /// Every node the walk reached.
    reached: HashSet<NodeId>,
    /// The nodes reached at the last level, to expand next.
    frontier: Vec<NodeId>,
    /// How many levels the walk expanded.
    levels: u32,
}

impl Side {
    fn new(end: &NodeId, direction: TraceDirection, forward: bool) -> Side {
        let steps = if forward { direction.steps() } else { direction.reversed().steps() };
        let mut reached = HashSet::with_capacity(FIRST_CAPACITY);
        reached.insert(end.clone());
        Side { steps, forward, reached, frontier: vec![end.clone()], levels: 0 }
    }

    /// Expands the frontier by one level, stepping only into nodes the audience may see.
    async fn expand(
        &mut self,
        store: &mut dyn Neighbours,
        request: &PathRequest,
        seen: &mut HashMap<NodeId, bool>,
        known: &mut Known,
    ) -> Result<()> {
        let everyone = request.audience == Audience::Everything;
        // Whether the far ends found are still to be checked against the audience.
        let mut unchecked = false;
        let mut found: Vec<(Edge, Direction)> = Vec::new();
        for &step in self.steps {
            let edges = match everyone {
                true => None,
                false => store.edges_seen(&self.frontier, step, &request.audience).await?,
            };
            let edges = match edges {
                Some(edges) => edges,
                None => {
                    unchecked |= !everyone;
                    store.edges(&self.frontier, step).await?
                }
            };
            found.extend(
                edges.into_iter().filter(|edge| visible_edge(edge, &request.via, None)).map(|edge| (edge, step)),
            );
        }
        if unchecked {
            let mut fresh: Vec<NodeId> = found
                .iter()
                .map(|(edge, step)| far_end(edge, *step))
                .filter(|id| !seen.contains_key(*id))
                .cloned()
                .collect();
            fresh.sort();
            fresh.dedup();
            let shown = store.seen(&fresh, &request.audience).await?;
            for id in fresh {
                let visible = shown.contains(&id);
                seen.insert(id, visible);
            }
            found.retain(|(edge, step)| seen[far_end(edge, *step)]);
        }
        self.levels += 1;
        let mut next = Vec::new();
        for (edge, step) in found {
            let there = far_end(&edge, step).clone();
            let here = near_end(&edge, step).clone();
            if self.reached.insert(there.clone()) {
                next.push(there.clone());
            }
            if self.forward {
                known.add(&here, &there, edge);
            } else {
                known.add(&there, &here, edge);
            }
        }
        // Backends return relationships in their own order; sorted, every backend walks alike.
        next.sort();
        self.frontier = next;
        Ok(())
    }
}

/// The steps a path search found, over numbered nodes and relationships.
#[derive(Default)]
struct Known {
    ids: Vec<NodeId>,
    index: HashMap<NodeId, usize>,
    edges: Vec<Edge>,
    /// For each node, the steps a path may take from it: the next node and the relationship.
    next: Vec<Vec<(usize, usize)>>,
    /// Each step once: its node, the next, the relationship's kind, and whether the relationship
    /// points the way of the step (when both ways are walked, it may point back).
    taken: HashSet<(usize, usize, RelationshipKind, bool)>,
}

impl Known {
    fn number(&mut self, id: &NodeId) -> usize {
        let fresh = self.ids.len();
        let n = *self.index.entry(id.clone()).or_insert(fresh);
        if n == fresh {
            self.ids.push(id.clone());
            self.next.push(Vec::new());
        }
        n
    }

    /// Notes that a path may step from `here` to `there` along `edge`.
    fn add(&mut self, here: &NodeId, there: &NodeId, edge: Edge) {
        let along = &edge.from == here;
        let (here, there) = (self.number(here), self.number(there));
        if self.taken.insert((here, there, edge.kind, along)) {
            self.edges.push(edge);
            self.next[here].push((there, self.edges.len() - 1));
        }
    }

    /// Orders each node's steps by the node they lead to, then the relationship's kind (then its
    /// from, when both ways are walked), so that every backend answers alike.
    fn sort(&mut self) {
        let (ids, edges) = (&self.ids, &self.edges);
        for steps in &mut self.next {
            steps.sort_by(|a, b| {
                let (x, y) = (&edges[a.1], &edges[b.1]);
                (&ids[a.0], x.kind, &x.from).cmp(&(&ids[b.0], y.kind, &y.from))
            });
        }
    }

    /// The fewest steps from each node to the target over the known steps (`UNREACHED` if none).
    fn distances_to(&self, target: usize) -> Vec<u32> {
        let mut back: Vec<Vec<usize>> = vec![Vec::new(); self.ids.len()];
        for (here, steps) in self.next.iter().enumerate() {
            for &(there, _) in steps {
                back[there].push(here);
            }
        }
        let mut distance = vec![UNREACHED; self.ids.len()];
        distance[target] = 0;
        let mut queue = std::collections::VecDeque::from([target]);
        while let Some(at) = queue.pop_front() {
            for &before in &back[at] {
                if distance[before] == UNREACHED {
                    distance[before] = distance[at] + 1;
                    queue.push_back(before);
                }
            }
        }
        distance
    }
}
