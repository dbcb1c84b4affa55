//! The store as the traversals see it, fetching ahead.
//!
//! `store::traverse` asks for a whole frontier's relationships one level at a
//! time and then for the nodes at their far ends. Over Bolt each ask is a
//! round trip, so a depth-4 trace would cost about ten. The walk says before
//! each lookup how many levels it may still expand that way
//! ([`Neighbours::reach`]); this walker answers the first lookup it cannot
//! answer yet with one statement that gathers every node within `reach - 1`
//! hops of the asked ids that way (the "ball"), each one's relationships that
//! way and the nodes at their far ends, and answers the walk's later lookups
//! from what it read. The ball is gathered by a variable-length expansion of
//! distinct end nodes, which Neo4j plans as a pruning breadth-first search
//! (each node expanded once), never enumerating paths.
//!
//! The walk still decides everything (what it may see, via, asOf, caps): the
//! ball ignores audiences and dates, so it holds at least what the walk will
//! look at, and answers are exactly those of level-by-level lookups. A ball is
//! capped at `Neo4jOptions::walk_ahead` nodes ([`BALL_NODES`] by default); when the cap is hit the statement answers
//! the asked ids alone (their relationships and far ends, still one round
//! trip), and the next level tries again with its smaller reach.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use neo4rs::Row;
use serde::Deserialize;

use super::Neo4jStore;
use super::read::{self, EdgeRow, NODE_MAP, NodeRow, id_list};
use crate::domain::{Edge, Node, NodeId, RelationshipKind, Result};
use crate::store::traverse::{Neighbours, TraceDirection};
use crate::store::{Direction, GraphStore};

/// How many nodes one fetch ahead gathers at most by default before it falls back to the asked
/// ids alone (`Neo4jOptions::walk_ahead`).
pub const BALL_NODES: usize = 2_000;

/// A relationship `r` as `EdgeRow` reads it, whichever end was matched first.
const REL_MAP: &str =
    "{src: startNode(r).id, kind: type(r), dst: endNode(r).id, assertion: r.assertion, props: r.props}";

/// One trace's or path search's lookups. Everything read is kept for the rest of the walk.
pub(super) struct Walker<'s> {
    store: &'s Neo4jStore,
    /// Whether the walk follows relationships both ways, so that a ball is gathered both ways.
    both: bool,
    /// The relationship kinds the walk follows (all, when empty); a ball grows along these only.
    via: Vec<RelationshipKind>,
    /// Levels the walk may still expand, the next lookup's being the first.
    levels: u32,
    /// Every relationship of a node that way, for the nodes whose relationships were read.
    edges: HashMap<(NodeId, Direction), Vec<Edge>>,
    /// Nodes read, by id; `None` for an id known not to be a node here (a foreign stub, or none).
    nodes: HashMap<NodeId, Option<Node>>,
}

impl<'s> Walker<'s> {
    pub(super) fn new(store: &'s Neo4jStore, direction: TraceDirection, via: &[RelationshipKind]) -> Walker<'s> {
        Walker {
            store,
            both: direction == TraceDirection::Both,
            via: via.to_vec(),
            levels: 1,
            edges: HashMap::new(),
            nodes: HashMap::new(),
        }
    }

    /// Reads the relationships of `ids` that way, and as far ahead as the walk may go.
    async fn fetch(&mut self, ids: &[NodeId], direction: Direction) -> Result<()> {
        let directions: &[Direction] = if self.both { &[Direction::Out, Direction::In] } else { &[direction] };
        let spread = if self.both { None } else { Some(direction) };
        let query = ball_query(ids, spread, &self.via, self.levels.saturating_sub(1), self.store.walk_ahead);
        let rows = self.store.rows(query).await?;
        let ball = Ball::read(&rows, directions)?;
        tracing::debug!(asked = ids.len(), nodes = ball.nodes.len(), whole = ball.whole, "fetched ahead");
        for node in ball.nodes {
            self.nodes.insert(node.id.clone(), Some(node));
        }
        for id in ball.stubs {
            self.nodes.entry(id).or_insert(None);
        }
        for (key, list) in ball.edges {
            self.edges.insert(key, list);
        }
        // An asked id with no row is neither a node nor a stub here: it has no relationships.
        for id in ids {
            for &d in directions {
                self.edges.entry((id.clone(), d)).or_default();
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Neighbours for Walker<'_> {
    async fn nodes(&mut self, ids: &[NodeId]) -> Result<Vec<Node>> {
        let missing: Vec<NodeId> = ids.iter().filter(|id| !self.nodes.contains_key(*id)).cloned().collect();
        if !missing.is_empty() {
            for node in GraphStore::nodes(self.store, &missing).await? {
                self.nodes.insert(node.id.clone(), Some(node));
            }
            for id in missing {
                self.nodes.entry(id).or_insert(None);
            }
        }
        // In the order asked, each once, as the store's own lookup answers.
        let mut given = HashSet::new();
        Ok(ids.iter().filter(|id| given.insert(*id)).filter_map(|id| self.nodes[id].clone()).collect())
    }

    async fn edges(&mut self, ids: &[NodeId], direction: Direction) -> Result<Vec<Edge>> {
        let missing: Vec<NodeId> =
            ids.iter().filter(|id| !self.edges.contains_key(&((*id).clone(), direction))).cloned().collect();
        if !missing.is_empty() {
            self.fetch(&missing, direction).await?;
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
}

/// What one fetch read.
struct Ball {
    /// False when the ball was over the cap and only the asked ids were read.
    whole: bool,
    nodes: Vec<Node>,
    /// Far ends that are foreign stubs, not nodes here.
    stubs: Vec<NodeId>,
    /// Each read node's relationships that way, in the order of the store's edge lookup.
    edges: Vec<((NodeId, Direction), Vec<Edge>)>,
}

/// A row of `ball_query`: a node's relationships (`at`), or a far end (`node`).
#[derive(Deserialize)]
struct BallRow {
    whole: bool,
    at: Option<String>,
    held: Option<bool>,
    out: Option<Vec<EdgeRow>>,
    #[serde(rename = "in")]
    into: Option<Vec<EdgeRow>>,
    node: Option<NodeRow>,
}

impl Ball {
    fn read(rows: &[Row], directions: &[Direction]) -> Result<Ball> {
        let mut ball = Ball { whole: true, nodes: Vec::new(), stubs: Vec::new(), edges: Vec::new() };
        let mut found: HashSet<NodeId> = HashSet::new();
        let mut ends: Vec<NodeId> = Vec::new();
        for row in rows {
            let row: BallRow = row.to().map_err(|e| read::corrupt(format!("a fetch-ahead row: {e}")))?;
            ball.whole &= row.whole;
            if let Some(node) = row.node {
                let node = node.into_node()?;
                found.insert(node.id.clone());
                ball.nodes.push(node);
                continue;
            }
            let Some(at) = row.at else { continue };
            let at = NodeId::parse(&at).map_err(read::corrupt)?;
            for (&direction, list) in directions.iter().zip([row.out, row.into].into_iter().flatten()) {
                let mut list = list.into_iter().map(EdgeRow::into_edge).collect::<Result<Vec<Edge>>>()?;
                let far = |e: &Edge| match direction {
                    Direction::Out => e.to.clone(),
                    Direction::In => e.from.clone(),
                };
                // The store's edge lookup orders one node's relationships by type, then far end.
                list.sort_by(|a, b| (a.kind.as_str(), far(a)).cmp(&(b.kind.as_str(), far(b))));
                if row.held == Some(true) {
                    ends.extend(list.iter().map(far));
                }
                ball.edges.push(((at.clone(), direction), list));
            }
        }
        // The far ends of a node's relationships that came back as no node are stubs.
        ball.stubs = ends.into_iter().filter(|id| !found.contains(id)).collect();
        Ok(ball)
    }
}

/// One statement: the nodes within `depth` hops of `ids` along `spread` (both ways when `None`)
/// and `via` (any kind, when empty), at most `cap` of them (else `ids` alone); each one's
/// relationships of `spread`'s directions (any kind, local or foreign far end) and their far
/// ends that are nodes; and the relationships of those of `ids` that are foreign stubs, as the
/// edge lookup reads them.
fn ball_query(
    ids: &[NodeId],
    spread: Option<Direction>,
    via: &[RelationshipKind],
    depth: u32,
    cap: usize,
) -> neo4rs::Query {
    // Relationship types are closed words of the Rust enum; the depth is a number (Cypher takes
    // no parameter in a variable-length pattern).
    let types: Vec<&str> = via.iter().map(|k| k.as_str()).collect();
    let types = if types.is_empty() { String::new() } else { format!(":{}", types.join("|")) };
    let (arrow_in, arrow_out) = match spread {
        Some(Direction::Out) => ("-", "->"),
        Some(Direction::In) => ("<-", "-"),
        None => ("-", "-"),
    };
    let out = |wanted: bool, pattern: &str| {
        if wanted { format!("[{pattern} | r{REL_MAP}]") } else { "null".to_owned() }
    };
    let want_out = spread != Some(Direction::In);
    let want_in = spread != Some(Direction::Out);
    let local_out = out(want_out, "(a)-[r]->(b) WHERE b:Node OR b:ForeignNode");
    let local_in = out(want_in, "(a)<-[r]-(b) WHERE b:Node OR b:ForeignNode");
    let stub_out = out(want_out, "(a)-[r]->(b:Node)");
    let stub_in = out(want_in, "(a)<-[r]-(b:Node)");
    let text = format!(
        "MATCH (s:Node) WHERE s.id IN $ids
         WITH collect(s) AS starts
         CALL (starts) {{
             UNWIND starts AS s
             MATCH (s){arrow_in}[{types}*0..{depth}]{arrow_out}(n:Node)
             WITH DISTINCT n LIMIT $over
             RETURN collect(n) AS ball
         }}
         WITH size(ball) < $over AS whole, CASE WHEN size(ball) < $over THEN ball ELSE starts END AS ball
         CALL (ball) {{
             UNWIND ball AS a
             RETURN a.id AS at, true AS held, {local_out} AS out, {local_in} AS in, null AS node
           UNION ALL
             UNWIND ball AS a
             MATCH (a){arrow_in}{arrow_out}(b:Node)
             WITH DISTINCT b
             RETURN null AS at, null AS held, null AS out, null AS in, b{NODE_MAP} AS node
           UNION ALL
             MATCH (a:ForeignNode) WHERE a.id IN $ids
             RETURN a.id AS at, false AS held, {stub_out} AS out, {stub_in} AS in, null AS node
         }}
         RETURN whole, at, held, out, in, node"
    );
    neo4rs::query(&text).param("ids", id_list(ids)).param("over", (cap + 1) as i64)
}
