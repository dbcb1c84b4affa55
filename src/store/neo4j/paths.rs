//! A path search answered by Neo4j in one statement, where that is cheap.
//!
//! `store::traverse::paths` walks from both ends over batched lookups: on
//! Neo4j two statements (the ends with a ball from each, then the nodes of the
//! paths found). When few walks leave the start within `maxDepth` steps, one
//! statement does it all instead: it reads both ends, enumerates every walk
//! out of the start through nodes the caller may see (relationships of the
//! asked kinds, the asked way), at most a bound of them, keeps the simple ones
//! that end at the target, and returns them with their nodes whole. Rust then
//! puts them in the search's order (shortest first, then step by step by the
//! node stepped to, the relationship's kind and its `from`: the order of
//! `traverse::paths`' depth-first search) and keeps the first `first`.
//!
//! The bound makes the answer the walk's own. Every partial path the walk's
//! search explores is a simple path out of the start through visible nodes,
//! so it is one of the walks enumerated here; the search explores each at
//! most once for each path length it tries (at most `maxDepth` of them). With
//! fewer than `MAX_PATH_WORK / maxDepth` walks, the search could not have hit
//! its work limit, and it finds exactly every simple path, in the order above.
//! When the enumeration reaches the bound (a wide start, or a deep search in
//! both directions), the statement stops there and the walk answers, as before.

use serde::Deserialize;

use super::read::{self, EdgeRow, NODE_MAP, NodeRow, Params, STEP_MAP, audience_condition};
use crate::domain::{Edge, Error, Node, NodeId, Result};
use crate::store::traverse::{MAX_PATH_WORK, TraceDirection};
use crate::store::{PathRequest, Paths};

/// What the statement found.
pub(super) enum Searched {
    /// The answer.
    Found(Paths),
    /// Too many walks to enumerate: the walk must answer. The ends, read whole, go with it.
    Wide(Vec<Node>),
}

/// How many walks the statement enumerates at most for this search, so that the walk's search
/// over them would stay within its work limit (see the module doc); `cap` is
/// `Neo4jOptions::walk_ahead`. Zero: the statement is not worth sending.
pub(super) fn bound(request: &PathRequest, cap: usize) -> usize {
    cap.min(MAX_PATH_WORK / request.max_depth.max(1) as usize)
}

/// The statement: the ends whole (`end`); and, when both are nodes the caller may see and differ,
/// how many walks of at most `max_depth` steps leave the start (`walked`, at most `over`), and,
/// when fewer than `over`, each simple path to the target as its relationships in order (`steps`)
/// and every node of those paths whole (`node`).
pub(super) fn query(request: &PathRequest, over: usize) -> neo4rs::Query {
    let mut params = Params::default();
    // Which nodes a path may step through: the caller's own rule, on every node of the walk.
    // Everything (the server itself) steps through foreign stubs too, as the walk does.
    let visible = |node: &str, params: &mut Params| match audience_condition(&request.audience, node, params) {
        Some(condition) => format!("{node}:Node AND {condition}"),
        None => format!("({node}:Node OR {node}:ForeignNode)"),
    };
    let (ends_visible, walk_visible) = {
        let s = visible("s", &mut params);
        let t = visible("t", &mut params);
        (format!("{s} AND {t}"), visible("n", &mut params))
    };
    let (arrow_in, arrow_out) = match request.direction {
        TraceDirection::Downstream => ("-", "->"),
        TraceDirection::Upstream => ("<-", "-"),
        TraceDirection::Both => ("-", "-"),
    };
    // Relationship types are closed words of the Rust enum; the depth is a number (Cypher takes
    // no parameter in a variable-length pattern).
    let types: Vec<&str> = request.via.iter().map(|k| k.as_str()).collect();
    let types = if types.is_empty() { String::new() } else { format!(":{}", types.join("|")) };
    let depth = request.max_depth;
    let text = format!(
        "CALL () {{
             MATCH (e:Node) WHERE e.id IN [$from, $to]
             RETURN e{NODE_MAP} AS end, null AS walked, null AS steps, null AS node
           UNION ALL
             MATCH (s:Node {{id: $from}}), (t:Node {{id: $to}})
             WHERE s <> t AND {ends_visible}
             CALL (s) {{
                 MATCH p = (s){arrow_in}[{types}*0..{depth}]{arrow_out}(x)
                 WHERE all(n IN nodes(p) WHERE {walk_visible})
                 RETURN p, x LIMIT $over
             }}
             WITH t, count(p) AS walks, collect(CASE WHEN x = t THEN p END) AS found
             WITH walks, CASE WHEN walks < $over THEN
                      [p IN found WHERE all(i IN range(0, length(p) - 1) WHERE NOT nodes(p)[i] IN nodes(p)[i + 1..])]
                  ELSE [] END AS found
             CALL (walks, found) {{
                 RETURN walks AS walked, null AS steps, null AS node
               UNION ALL
                 UNWIND found AS p
                 RETURN null AS walked, [r IN relationships(p) | r{STEP_MAP}] AS steps, null AS node
               UNION ALL
                 UNWIND found AS p
                 UNWIND nodes(p) AS n
                 WITH DISTINCT n WHERE n:Node
                 RETURN null AS walked, null AS steps, n{NODE_MAP} AS node
             }}
             RETURN null AS end, walked, steps, node
         }}
         RETURN end, walked, steps, node"
    );
    params
        .into_query(&text)
        .param("from", request.from.as_str())
        .param("to", request.to.as_str())
        .param("over", over as i64)
}

/// A row of `query`.
#[derive(Deserialize)]
struct Row {
    end: Option<NodeRow>,
    walked: Option<i64>,
    steps: Option<Vec<EdgeRow>>,
    node: Option<NodeRow>,
}

/// The answer from the statement's rows, as `traverse::paths` gives it: an end the caller may not
/// see is not found (the start first), an empty answer from a node to itself.
pub(super) fn answer(rows: &[neo4rs::Row], request: &PathRequest, over: usize) -> Result<Searched> {
    let (mut ends, mut walked, mut found, mut nodes) = (Vec::new(), None, Vec::new(), Vec::new());
    for row in rows {
        let row: Row = row.to().map_err(|e| read::corrupt(format!("a path search row: {e}")))?;
        if let Some(end) = row.end {
            ends.push(end.into_node()?);
        }
        walked = walked.or(row.walked);
        if let Some(steps) = row.steps {
            found.push(steps.into_iter().map(EdgeRow::into_edge).collect::<Result<Vec<Edge>>>()?);
        }
        if let Some(node) = row.node {
            nodes.push(node.into_node()?);
        }
    }
    for id in [&request.from, &request.to] {
        if !ends.iter().any(|n| &n.id == id && request.audience.sees_node(n)) {
            return Err(Error::no_node(id));
        }
    }
    if request.from == request.to {
        return Ok(Searched::Found(Paths::default()));
    }
    match walked {
        Some(walked) if (walked as usize) < over => {}
        // At the bound (or, should the walk's row be missing, not known to be under it).
        _ => return Ok(Searched::Wide(ends)),
    }
    let mut paths: Vec<(Vec<NodeId>, Vec<Edge>)> = found.into_iter().map(|edges| along(&request.from, edges)).collect();
    // The depth-first search's order: shortest first, then each step by the node it leads to, the
    // relationship's kind and its from (see `traverse::Known::sort`).
    paths.sort_by_cached_key(|(ids, edges)| {
        let steps: Vec<_> = ids[1..].iter().zip(edges).map(|(id, e)| (id.clone(), e.kind, e.from.clone())).collect();
        (edges.len(), steps)
    });
    // The search stops at its `first`th path, having found at least one.
    paths.truncate(request.first.max(1));
    let mut ids: Vec<&NodeId> = paths.iter().flat_map(|(ids, _)| ids).collect();
    ids.sort();
    ids.dedup();
    let mut nodes: foldhash::HashMap<NodeId, Node> = nodes.into_iter().map(|n| (n.id.clone(), n)).collect();
    // In id order, each once, foreign stubs left out: as the node lookup answers the walk.
    let nodes = ids.into_iter().filter_map(|id| nodes.remove(id)).collect();
    Ok(Searched::Found(Paths { paths, nodes, truncated: Vec::new() }))
}

/// A path's nodes, from its start along its relationships (either way round).
fn along(from: &NodeId, edges: Vec<Edge>) -> (Vec<NodeId>, Vec<Edge>) {
    let mut ids = vec![from.clone()];
    for edge in &edges {
        let at = &ids[ids.len() - 1];
        let next = if &edge.from == at { edge.to.clone() } else { edge.from.clone() };
        ids.push(next);
    }
    (ids, edges)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Audience, RelationshipKind};

    fn request(max_depth: u32, audience: Audience) -> PathRequest {
        PathRequest {
            from: NodeId::parse("org0:learning:learning-3").unwrap(),
            to: NodeId::parse("org0:value:value-0").unwrap(),
            direction: TraceDirection::Downstream,
            max_depth,
            via: vec![RelationshipKind::Influenced],
            first: 10,
            audience,
        }
    }

    #[test]
    fn the_bound_keeps_the_walk_within_its_work() {
        assert_eq!(bound(&request(6, Audience::Public), 2_000), 2_000);
        assert_eq!(bound(&request(10, Audience::Public), 1_000_000), MAX_PATH_WORK / 10);
        assert_eq!(bound(&request(0, Audience::Public), 5), 5);
        assert_eq!(bound(&request(6, Audience::Public), 0), 0);
    }

    #[test]
    fn every_node_of_a_walk_is_held_to_the_callers_rule() {
        let text = |audience| format!("{:?}", query(&request(6, audience), 100));
        let member = text(Audience::Member("org0".into()));
        assert!(member.contains("all(n IN nodes(p) WHERE n:Node AND (n.visibility <> 'PRIVATE'"), "{member}");
        assert!(member.contains("[:INFLUENCED*0..6]->"), "{member}");
        let public = text(Audience::Public);
        assert!(public.contains("all(n IN nodes(p) WHERE n:Node AND n.visibility = 'PUBLIC')"), "{public}");
        let everything = text(Audience::Everything);
        assert!(everything.contains("(n:Node OR n:ForeignNode)"), "{everything}");
    }
}
