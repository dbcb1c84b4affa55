//! A Cypher script that recreates the graph in Neo4j, in exactly the layout
//! pvgraph's Neo4j store writes (the properties come from that store's own
//! functions), so that `pvgraph --store neo4j://…` serves it. One statement
//! per line, each ending in `;` (cypher-shell reads it as it is). MERGE on
//! the id makes a rerun update rather than duplicate. Every value is written
//! as a Cypher literal with its quotes and control characters escaped; names
//! (labels, relationship types, property keys) come from pvgraph's own enums.

use std::collections::HashSet;
use std::fmt::Write as _;

use neo4rs::BoltType;

use crate::domain::{Edge, Node, NodeId};
use crate::store::neo4j::{edge_properties, node_properties};

/// The constraints the script relies on for MERGE by id, as the store creates them.
const CONSTRAINTS: [&str; 2] =
    [include_str!("../../schema/neo4j/1-constraints.cypher"), include_str!("../../schema/neo4j/5-foreign.cypher")];

/// The graph as a Cypher script.
pub fn cypher(nodes: &[Node], edges: &[Edge]) -> anyhow::Result<String> {
    let mut script = String::from(
        "// pvgraph export: recreates the graph in Neo4j 5 in the layout pvgraph reads.\n\
         // Run it with cypher-shell (or any client, one statement per line).\n",
    );
    for statement in CONSTRAINTS.iter().flat_map(|file| statements(file)) {
        writeln!(script, "{statement};")?;
    }
    for node in nodes {
        let props = literal(&node_properties(node)?);
        writeln!(
            script,
            "MERGE (n:Node {{id: {}}}) SET n:{}, n = {props};",
            string(node.id.as_str()),
            node.kind().type_name()
        )?;
    }
    // A foreign end (a partner's node) is the stub the store keeps for it, made before its relationships.
    let foreign = super::foreign_ends(nodes, edges);
    for id in &foreign {
        writeln!(
            script,
            "MERGE (f:ForeignNode {{id: {}}}) SET f.organisation = {}, f.kind = {};",
            string(id.as_str()),
            string(id.organisation()),
            string(id.kind().as_str())
        )?;
    }
    let stubs: HashSet<&NodeId> = foreign.into_iter().collect();
    let label = |id: &NodeId| if stubs.contains(id) { "ForeignNode" } else { "Node" };
    for edge in edges {
        writeln!(
            script,
            "MATCH (a:{} {{id: {}}}), (b:{} {{id: {}}}) MERGE (a)-[r:{}]->(b) SET r = {};",
            label(&edge.from),
            string(edge.from.as_str()),
            label(&edge.to),
            string(edge.to.as_str()),
            edge.kind.as_str(),
            literal(&edge_properties(edge))
        )?;
    }
    Ok(script)
}

/// The statements of a Cypher file without its comments, each on one line.
fn statements(file: &str) -> Vec<String> {
    let code: Vec<&str> = file.lines().map(|l| l.split("//").next().unwrap_or("").trim()).collect();
    code.join(" ")
        .split(';')
        .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|s| !s.is_empty())
        .collect()
}

/// A Cypher string literal: single quotes, with backslashes, quotes and control characters escaped.
fn string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('\'');
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// A property key, backquoted when it is not a plain identifier.
fn key(name: &str) -> String {
    let plain = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if plain { name.to_owned() } else { format!("`{}`", name.replace('`', "``")) }
}

/// A value as a Cypher literal.
fn literal(value: &BoltType) -> String {
    match value {
        BoltType::String(s) => string(&s.value),
        BoltType::Boolean(b) => b.value.to_string(),
        BoltType::Integer(i) => i.value.to_string(),
        BoltType::Float(f) if f.value.is_finite() => format!("{:?}", f.value),
        BoltType::List(list) => format!("[{}]", list.value.iter().map(literal).collect::<Vec<_>>().join(", ")),
        BoltType::Map(map) => {
            let mut fields: Vec<(&str, &BoltType)> = map.value.iter().map(|(k, v)| (k.value.as_str(), v)).collect();
            fields.sort_by_key(|(k, _)| *k);
            let fields: Vec<String> = fields.into_iter().map(|(k, v)| format!("{}: {}", key(k), literal(v))).collect();
            format!("{{{}}}", fields.join(", "))
        }
        _ => "null".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped() {
        assert_eq!(string("it's a \\ \"test\"\nline\u{1}"), "'it\\'s a \\\\ \"test\"\\nline\\u0001'");
        assert_eq!(key("createdAt"), "createdAt");
        assert_eq!(key("odd key"), "`odd key`");
    }
}
