//! Whole-graph exports a user can open elsewhere: GraphML for Gephi and yEd,
//! and a Cypher script that recreates the graph in Neo4j in the layout
//! pvgraph's Neo4j store reads, so pvgraph can serve it. The seed format
//! (`json`) and PROV-JSON live with their own modules.
//!
//! A relationship may have a foreign end: a partner's node, named by its id
//! and not held here. GraphML draws it as a node marked `foreign`, with only
//! what its id says; the Cypher script makes it the stub the Neo4j store uses.

mod cypher;
mod graphml;

pub use cypher::cypher;
pub use graphml::graphml;

use std::collections::HashSet;

use crate::domain::{Edge, Node, NodeId};

/// The foreign ends of the relationships: ids that are no node of the graph, each once, in the
/// order the relationships name them.
fn foreign_ends<'a>(nodes: &[Node], edges: &'a [Edge]) -> Vec<&'a NodeId> {
    let held: HashSet<&NodeId> = nodes.iter().map(|n| &n.id).collect();
    let mut seen = HashSet::new();
    edges.iter().flat_map(|e| [&e.from, &e.to]).filter(|id| !held.contains(id) && seen.insert(*id)).collect()
}
