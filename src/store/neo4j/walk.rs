//! The store as the traversals see it, fetching ahead.
//!
//! `store::traverse` asks for a whole frontier's relationships one level at a
//! time and then for the nodes at their far ends. Over Bolt each ask is a
//! round trip, so a depth-4 trace would cost about ten. The walk says before
//! each lookup how many levels it may still expand that way
//! ([`Neighbours::reach`]); this walker answers the first lookup it cannot
//! answer yet with one statement that gathers every node within `reach - 1`
//! hops of the asked ids that way (the "ball"), each one's relationships that
//! way, and with each relationship the visibility of its far end, and answers
//! the walk's later lookups from what it read. The ball is gathered by a
//! variable-length expansion of distinct end nodes, which Neo4j plans as a
//! pruning breadth-first search (each node expanded once), never enumerating
//! paths.
//!
//! What is read whole depends on the walk ([`Keep`]): a trace returns the
//! nodes of its ball, so it reads them whole with the ball; a path search
//! only steps through its balls and needs just who may see each node, so it
//! reads the nodes of the paths it found whole at the end, in one statement.
//! Where the walk starts is known before its first lookup ([`Walker::ahead`]),
//! so the statement that reads the walk's ends gathers the first balls too: a
//! trace is one statement, a path search two (the ends with a ball from each,
//! then the nodes of the paths) when it is too wide to be answered whole in
//! one statement (`paths.rs`).
//!
//! The walk still decides everything (what it may see, via, asOf, caps): the
//! ball ignores audiences and dates, so it holds at least what the walk will
//! look at, and answers are exactly those of level-by-level lookups; a node
//! the walk asks for whole that a ball read only the visibility of is read
//! then. A ball is capped at `Neo4jOptions::walk_ahead` nodes ([`BALL_NODES`]
//! by default); when the cap is hit the statement answers the asked ids alone
//! (their relationships, and for a trace the far ends whole, still one round
//! trip), and the next level tries again with its smaller reach.

use foldhash::{HashMap, HashMapExt as _, HashSet, HashSetExt as _};

use async_trait::async_trait;
use serde::Deserialize;

use super::Neo4jStore;
use super::read::{self, EdgeRow, NODE_MAP, NodeRow, id_list};
use crate::domain::{Audience, Edge, Node, NodeId, RelationshipKind, Result, Visibility};
use crate::store::traverse::{Neighbours, TraceDirection, far_end};
use crate::store::{Direction, GraphStore};

/// How many nodes one fetch ahead gathers at most by default before it falls back to the asked
/// ids alone (`Neo4jOptions::walk_ahead`).
pub const BALL_NODES: usize = 2_000;

/// A relationship `r` from `a` to `b`, either way round, as `BallEdge` reads it: with the
/// visibility of its far end `b`, or null when `b` is a foreign stub.
const REL_MAP: &str = "{src: startNode(r).id, kind: type(r), dst: endNode(r).id, assertion: r.assertion, \
                       props: r.props, far: CASE WHEN b:Node THEN coalesce(b.visibility, '') END}";

/// Which nodes a walk wants whole from the balls it reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Keep {
    /// Every node of a ball (a trace answers them); far ends beyond it by visibility only.
    Ball,
    /// None: every node by visibility only (a path search answers only the nodes of its paths).
    Visibility,
}

/// What the walk knows of an id.
enum Known {
    Whole(Box<Node>),
    /// A node here, of which only who may see it was read.
    Seen(Visibility),
    /// Not a node here: a foreign stub, or nothing.
    Absent,
}

/// A ball to gather: from `ids`, `depth` hops along `spread` (both ways when `None`).
struct Ahead {
    ids: Vec<NodeId>,
    spread: Option<Direction>,
    depth: u32,
}

impl Ahead {
    /// The ways each node's relationships are read.
    fn directions(&self) -> &'static [Direction] {
        match self.spread {
            Some(Direction::Out) => &[Direction::Out],
            Some(Direction::In) => &[Direction::In],
            None => &[Direction::Out, Direction::In],
        }
    }
}

fn spread(direction: TraceDirection) -> Option<Direction> {
    match direction {
        TraceDirection::Downstream => Some(Direction::Out),
        TraceDirection::Upstream => Some(Direction::In),
        TraceDirection::Both => None,
    }
}

/// One trace's or path search's lookups. Everything read is kept for the rest of the walk.
pub(super) struct Walker<'s> {
    store: &'s Neo4jStore,
    /// Whether the walk follows relationships both ways, so that a ball is gathered both ways.
    both: bool,
    /// The relationship kinds the walk follows (all, when empty); a ball grows along these only.
    via: Vec<RelationshipKind>,
    keep: Keep,
    /// Levels the walk may still expand, the next lookup's being the first.
    levels: u32,
    /// Balls to gather with the first nodes the walk asks for.
    first: Vec<Ahead>,
    /// Every relationship of a node that way, for the nodes whose relationships were read.
    edges: HashMap<(NodeId, Direction), Vec<Edge>>,
    nodes: HashMap<NodeId, Known>,
}

impl<'s> Walker<'s> {
    pub(super) fn new(
        store: &'s Neo4jStore,
        direction: TraceDirection,
        via: &[RelationshipKind],
        keep: Keep,
    ) -> Walker<'s> {
        Walker {
            store,
            both: direction == TraceDirection::Both,
            via: via.to_vec(),
            keep,
            levels: 1,
            first: Vec::new(),
            edges: HashMap::new(),
            nodes: HashMap::new(),
        }
    }

    /// Has the walk's first node lookup also gather the ball from `from` that a walk `direction`
    /// with `levels` levels to expand (as [`Neighbours::reach`] counts them) will look at.
    pub(super) fn ahead(mut self, from: &NodeId, direction: TraceDirection, levels: u32) -> Self {
        if levels > 0 {
            let spread = if self.both { None } else { spread(direction) };
            self.first.push(Ahead { ids: vec![from.clone()], spread, depth: levels - 1 });
        }
        self
    }

    /// Starts the walk knowing these nodes whole.
    pub(super) fn knowing(mut self, nodes: Vec<Node>) -> Self {
        for node in nodes {
            self.nodes.insert(node.id.clone(), Known::Whole(Box::new(node)));
        }
        self
    }

    /// Reads `balls` and the nodes `whole`, in one statement.
    async fn fetch(&mut self, balls: &[Ahead], whole: &[NodeId]) -> Result<()> {
        let query = fetch_query(balls, whole, &self.via, self.keep, self.store.walk_ahead);
        let rows = self.store.rows(query).await?;
        let mut complete = true;
        let mut read = 0;
        for row in &rows {
            let row: BallRow = row.to().map_err(|e| read::corrupt(format!("a fetch-ahead row: {e}")))?;
            complete &= row.whole;
            if let Some(node) = row.node {
                let node = node.into_node()?;
                read += 1;
                self.nodes.insert(node.id.clone(), Known::Whole(Box::new(node)));
            }
            let Some(at) = row.at else { continue };
            let at = NodeId::parse(&at).map_err(read::corrupt)?;
            for (direction, list) in [(Direction::Out, row.out), (Direction::In, row.into)] {
                let Some(list) = list else { continue };
                let list = self.relationships(list, direction)?;
                self.edges.insert((at.clone(), direction), list);
            }
        }
        tracing::debug!(rows = rows.len(), whole_nodes = read, complete, "fetched ahead");
        // An asked id with no row is neither a node nor a stub here: it has no relationships.
        for ball in balls {
            for id in &ball.ids {
                for &d in ball.directions() {
                    self.edges.entry((id.clone(), d)).or_default();
                }
            }
        }
        for id in whole {
            self.nodes.entry(id.clone()).or_insert(Known::Absent);
        }
        Ok(())
    }

    /// One node's relationships that way, in the order of the store's edge lookup; notes who may
    /// see their far ends.
    fn relationships(&mut self, list: Vec<BallEdge>, direction: Direction) -> Result<Vec<Edge>> {
        let mut edges = Vec::with_capacity(list.len());
        for row in list {
            let visibility = match &row.far {
                Some(text) => Some(Visibility::parse(text).ok_or_else(|| read::corrupt(text))?),
                None => None,
            };
            let edge =
                EdgeRow { src: row.src, kind: row.kind, dst: row.dst, assertion: row.assertion, props: row.props }
                    .into_edge()?;
            let end = far_end(&edge, direction).clone();
            self.nodes.entry(end).or_insert(visibility.map_or(Known::Absent, Known::Seen));
            edges.push(edge);
        }
        // The store's edge lookup orders one node's relationships by type, then far end.
        edges.sort_by(|a, b| (a.kind.as_str(), far_end(a, direction)).cmp(&(b.kind.as_str(), far_end(b, direction))));
        Ok(edges)
    }
}

#[async_trait]
impl Neighbours for Walker<'_> {
    async fn nodes(&mut self, ids: &[NodeId]) -> Result<Vec<Node>> {
        let first = std::mem::take(&mut self.first);
        let missing: Vec<NodeId> = ids
            .iter()
            .filter(|id| !matches!(self.nodes.get(*id), Some(Known::Whole(_) | Known::Absent)))
            .cloned()
            .collect();
        if !first.is_empty() {
            self.fetch(&first, &missing).await?;
        } else if !missing.is_empty() {
            for node in GraphStore::nodes(self.store, &missing).await? {
                self.nodes.insert(node.id.clone(), Known::Whole(Box::new(node)));
            }
            for id in missing {
                // Asked whole and not read: not a node here (any more).
                if !matches!(self.nodes.get(&id), Some(Known::Whole(_))) {
                    self.nodes.insert(id, Known::Absent);
                }
            }
        }
        // In the order asked, each once, as the store's own lookup answers.
        let mut given = HashSet::new();
        Ok(ids
            .iter()
            .filter(|id| given.insert(*id))
            .filter_map(|id| match &self.nodes[id] {
                Known::Whole(node) => Some(Node::clone(node)),
                _ => None,
            })
            .collect())
    }

    async fn edges(&mut self, ids: &[NodeId], direction: Direction) -> Result<Vec<Edge>> {
        let missing: Vec<NodeId> =
            ids.iter().filter(|id| !self.edges.contains_key(&((*id).clone(), direction))).cloned().collect();
        if !missing.is_empty() {
            let spread = if self.both { None } else { Some(direction) };
            let ball = Ahead { ids: missing, spread, depth: self.levels.saturating_sub(1) };
            self.fetch(&[ball], &[]).await?;
        }
        let mut given = HashSet::new();
        Ok(ids
            .iter()
            .filter(|id| given.insert(*id))
            .flat_map(|id| self.edges[&(id.clone(), direction)].iter().cloned())
            .collect())
    }

    fn reach(&mut self, levels: u32) {
        self.levels = levels.max(1);
    }

    async fn seen(&mut self, ids: &[NodeId], audience: &Audience) -> Result<HashSet<NodeId>> {
        let unknown: Vec<NodeId> = ids.iter().filter(|id| !self.nodes.contains_key(*id)).cloned().collect();
        if !unknown.is_empty() {
            self.nodes(&unknown).await?;
        }
        Ok(ids
            .iter()
            .filter(|id| match &self.nodes[*id] {
                Known::Whole(node) => audience.sees_node(node),
                Known::Seen(visibility) => audience.sees(*visibility, id.organisation()),
                Known::Absent => false,
            })
            .cloned()
            .collect())
    }
}

/// A relationship as `REL_MAP` returns it.
#[derive(Deserialize)]
struct BallEdge {
    src: String,
    kind: String,
    dst: String,
    assertion: String,
    props: String,
    far: Option<String>,
}

/// A row of `fetch_query`: a node's relationships (`at`), a node whole (`node`), or both.
#[derive(Deserialize)]
struct BallRow {
    whole: bool,
    at: Option<String>,
    node: Option<NodeRow>,
    out: Option<Vec<BallEdge>>,
    #[serde(rename = "in")]
    into: Option<Vec<BallEdge>>,
}

/// One statement: for each ball, the nodes within `depth` hops of its `ids` along `spread` and
/// `via` (any kind, when empty), at most `cap` of them (else its `ids` alone), each one's
/// relationships of `spread`'s directions (any kind, local or foreign far end, with the far end's
/// visibility), and the relationships of those of its `ids` that are foreign stubs, as the edge
/// lookup reads them; the nodes of a ball whole if `keep` says so (and for a trace over the cap,
/// the far ends whole, which its next level reads); and the nodes `whole`.
fn fetch_query(balls: &[Ahead], whole: &[NodeId], via: &[RelationshipKind], keep: Keep, cap: usize) -> neo4rs::Query {
    // Relationship types are closed words of the Rust enum; the depth is a number (Cypher takes
    // no parameter in a variable-length pattern).
    let types: Vec<&str> = via.iter().map(|k| k.as_str()).collect();
    let types = if types.is_empty() { String::new() } else { format!(":{}", types.join("|")) };
    let mut arms = Vec::new();
    let mut query_params: Vec<(String, neo4rs::BoltType)> = Vec::new();
    for (n, ball) in balls.iter().enumerate() {
        let ids = format!("$ids{n}");
        query_params.push((format!("ids{n}"), id_list(&ball.ids)));
        let (arrow_in, arrow_out) = match ball.spread {
            Some(Direction::Out) => ("-", "->"),
            Some(Direction::In) => ("<-", "-"),
            None => ("-", "-"),
        };
        let list = |wanted: bool, pattern: &str| {
            if wanted { format!("[{pattern} | r{REL_MAP}]") } else { "null".to_owned() }
        };
        let want_out = ball.spread != Some(Direction::In);
        let want_in = ball.spread != Some(Direction::Out);
        let local_out = list(want_out, "(a)-[r]->(b) WHERE b:Node OR b:ForeignNode");
        let local_in = list(want_in, "(a)<-[r]-(b) WHERE b:Node OR b:ForeignNode");
        let stub_out = list(want_out, "(a)-[r]->(b:Node)");
        let stub_in = list(want_in, "(a)<-[r]-(b:Node)");
        let (node, ends) = match keep {
            Keep::Ball => (
                format!("a{NODE_MAP}"),
                format!(
                    "UNION ALL
                     UNWIND CASE WHEN whole THEN [] ELSE ball END AS a
                     MATCH (a){arrow_in}{arrow_out}(b:Node)
                     WITH DISTINCT b
                     RETURN null AS at, b{NODE_MAP} AS node, null AS out, null AS in"
                ),
            ),
            Keep::Visibility => ("null".to_owned(), String::new()),
        };
        let depth = ball.depth;
        arms.push(format!(
            "MATCH (s:Node) WHERE s.id IN {ids}
             WITH collect(s) AS starts
             CALL (starts) {{
                 UNWIND starts AS s
                 MATCH (s){arrow_in}[{types}*0..{depth}]{arrow_out}(n:Node)
                 WITH DISTINCT n LIMIT $over
                 RETURN collect(n) AS ball
             }}
             WITH size(ball) < $over AS whole, CASE WHEN size(ball) < $over THEN ball ELSE starts END AS ball
             CALL (ball, whole) {{
                 UNWIND ball AS a
                 RETURN a.id AS at, {node} AS node, {local_out} AS out, {local_in} AS in
               {ends}
               UNION ALL
                 MATCH (a:ForeignNode) WHERE a.id IN {ids}
                 RETURN a.id AS at, null AS node, {stub_out} AS out, {stub_in} AS in
             }}
             RETURN whole, at, node, out, in"
        ));
    }
    if !whole.is_empty() {
        query_params.push(("whole".into(), id_list(whole)));
        arms.push(format!(
            "UNWIND $whole AS id
             MATCH (n:Node {{id: id}})
             RETURN true AS whole, null AS at, n{NODE_MAP} AS node, null AS out, null AS in"
        ));
    }
    let text = format!("CALL () {{\n{}\n}}\nRETURN whole, at, node, out, in", arms.join("\nUNION ALL\n"));
    neo4rs::query(&text).params(query_params).param("over", (cap + 1) as i64)
}
