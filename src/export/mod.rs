//! Whole-graph exports a user can open elsewhere: GraphML for Gephi and yEd,
//! and a Cypher script that recreates the graph in Neo4j in the layout
//! pvgraph's Neo4j store reads, so pvgraph can serve it. The seed format
//! (`json`) and PROV-JSON live with their own modules.

mod cypher;
mod graphml;

pub use cypher::cypher;
pub use graphml::graphml;
