//! The path search against a brute-force enumeration of simple paths. Generated graphs (a few
//! seeds, some nodes PRIVATE or PARTNERS) are loaded into real SQLite files, and for many
//! starts, targets, depths, directions, relationship kinds and audiences the store's paths must
//! be exactly every simple path, in the documented order: shortest first, then by the nodes they
//! step to (a node's id, then the relationship's kind and its from). A hand-built graph puts the
//! shortest routes through nodes the caller may not see, near either end.

use std::collections::{BTreeMap, HashMap};

use pvgraph::domain::{Audience, Edge, Error, Node, NodeId, RelationshipKind};
use pvgraph::store::{self, PathRequest, Paths, Store, StoreLocation, TraceDirection};
use serde_json::{Value, json};

/// A path as the search answers it: the nodes along it and the relationships between them.
type Path = (Vec<NodeId>, Vec<Edge>);

/// A store in a temporary folder, holding a seed file's text.
async fn store_with(text: &str) -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = store::open(&StoreLocation::Sqlite(dir.path().join("paths.db"))).await.unwrap();
    pvgraph::seed::load(&store, text).await.expect("the graph loads");
    (store, dir)
}

/// A generated graph of three organisations in which every seventh node (organisations aside)
/// is PRIVATE and the one after it PARTNERS.
fn generated(seed: u64) -> String {
    let mut bytes = Vec::new();
    pvgraph::generate::write(pvgraph::generate::Plan { organisations: 3, seed }, &mut bytes).unwrap();
    let mut file: Value = serde_json::from_slice(&bytes).unwrap();
    for (i, node) in file["nodes"].as_array_mut().unwrap().iter_mut().enumerate() {
        if node["id"].as_str().unwrap().contains(":organisation:") {
            continue;
        }
        match i % 7 {
            3 => node["visibility"] = json!("PRIVATE"),
            4 => node["visibility"] = json!("PARTNERS"),
            _ => {}
        }
    }
    file.to_string()
}

/// The whole graph, for the brute-force enumeration.
struct Graph {
    nodes: HashMap<NodeId, Node>,
    /// For each node, every relationship touching it.
    touching: HashMap<NodeId, Vec<Edge>>,
}

impl Graph {
    async fn of(store: &Store) -> Graph {
        let (nodes, edges) = store.dump().await.unwrap();
        let mut touching: HashMap<NodeId, Vec<Edge>> = HashMap::new();
        for edge in edges {
            touching.entry(edge.from.clone()).or_default().push(edge.clone());
            touching.entry(edge.to.clone()).or_default().push(edge);
        }
        Graph { nodes: nodes.into_iter().map(|n| (n.id.clone(), n)).collect(), touching }
    }

    fn sees(&self, id: &NodeId, audience: &Audience) -> bool {
        self.nodes.get(id).is_some_and(|n| audience.sees_node(n))
    }

    /// Every simple path out of `from` of at most `max` steps through nodes the audience may
    /// see, by the node it ends at, each in the documented order.
    fn every_path(&self, from: &NodeId, ask: &Ask) -> BTreeMap<NodeId, Vec<Path>> {
        let mut found: BTreeMap<NodeId, Vec<Path>> = BTreeMap::new();
        self.walk(&mut vec![from.clone()], &mut Vec::new(), ask, &mut found);
        for paths in found.values_mut() {
            paths.sort_by_key(|(nodes, edges)| {
                let steps: Vec<_> =
                    nodes[1..].iter().zip(edges).map(|(n, e)| (n.clone(), e.kind, e.from.clone())).collect();
                (edges.len(), steps)
            });
        }
        found
    }

    fn walk(&self, nodes: &mut Vec<NodeId>, edges: &mut Vec<Edge>, ask: &Ask, found: &mut BTreeMap<NodeId, Vec<Path>>) {
        if edges.len() == ask.max_depth as usize {
            return;
        }
        let at = nodes[nodes.len() - 1].clone();
        for edge in self.touching.get(&at).into_iter().flatten() {
            if !ask.via.is_empty() && !ask.via.contains(&edge.kind) {
                continue;
            }
            let mut next = Vec::new();
            if edge.from == at && ask.direction != TraceDirection::Upstream {
                next.push(&edge.to);
            }
            if edge.to == at && ask.direction != TraceDirection::Downstream {
                next.push(&edge.from);
            }
            for there in next {
                if nodes.contains(there) || !self.sees(there, &ask.audience) {
                    continue;
                }
                nodes.push(there.clone());
                edges.push(edge.clone());
                found.entry(there.clone()).or_default().push((nodes.clone(), edges.clone()));
                self.walk(nodes, edges, ask, found);
                nodes.pop();
                edges.pop();
            }
        }
    }
}

/// One way of asking, without its ends.
#[derive(Clone, Debug)]
struct Ask {
    direction: TraceDirection,
    max_depth: u32,
    via: Vec<RelationshipKind>,
    audience: Audience,
}

impl Ask {
    fn request(&self, from: &NodeId, to: &NodeId, first: usize) -> PathRequest {
        PathRequest {
            from: from.clone(),
            to: to.clone(),
            direction: self.direction,
            max_depth: self.max_depth,
            via: self.via.clone(),
            first,
            audience: self.audience.clone(),
        }
    }
}

fn id(text: &str) -> NodeId {
    NodeId::parse(text).unwrap()
}

/// A path's nodes and relationships, as text that compares whole relationships.
fn shown(paths: &[Path]) -> Vec<(Vec<String>, Vec<String>)> {
    paths
        .iter()
        .map(|(nodes, edges)| {
            (nodes.iter().map(ToString::to_string).collect(), edges.iter().map(|e| format!("{e:?}")).collect())
        })
        .collect()
}

/// Checks one search against the enumeration, with every path asked for and with only a few.
async fn check(store: &Store, ask: &Ask, from: &NodeId, to: &NodeId, want: &[Path]) {
    let all = store.paths(&ask.request(from, to, 100_000)).await.unwrap();
    assert_eq!(shown(&all.paths), shown(want), "{from} -> {to}, {ask:?}");
    assert!(all.truncated.is_empty(), "{:?}", all.truncated);
    let mut on_paths: Vec<String> = want.iter().flat_map(|(nodes, _)| nodes.iter().map(ToString::to_string)).collect();
    on_paths.sort();
    on_paths.dedup();
    let mut nodes: Vec<String> = all.nodes.iter().map(|n| n.id.to_string()).collect();
    nodes.sort();
    assert_eq!(nodes, on_paths, "{from} -> {to}, {ask:?}");
    let few = store.paths(&ask.request(from, to, 2)).await.unwrap();
    assert_eq!(shown(&few.paths), shown(&want[..want.len().min(2)]), "first 2: {from} -> {to}, {ask:?}");
}

/// Of the nodes reached, the targets worth asking for: the farthest (by fewest steps), the one
/// with the most paths, one from the middle, and a node the audience sees but cannot reach.
fn targets(graph: &Graph, from: &NodeId, reached: &BTreeMap<NodeId, Vec<Path>>, audience: &Audience) -> Vec<NodeId> {
    let mut picked = Vec::new();
    let fewest = |id: &NodeId| reached[id][0].1.len();
    if let Some(far) = reached.keys().max_by_key(|id| (fewest(id), reached[*id].len())) {
        picked.push(far.clone());
    }
    if let Some(most) = reached.keys().max_by_key(|id| reached[*id].len()) {
        picked.push(most.clone());
    }
    if let Some(middle) = reached.keys().nth(reached.len() / 2) {
        picked.push(middle.clone());
    }
    let mut ids: Vec<&NodeId> = graph.nodes.keys().collect();
    ids.sort();
    let unreached = ids.into_iter().find(|id| *id != from && !reached.contains_key(*id) && graph.sees(id, audience));
    picked.extend(unreached.cloned());
    picked.sort();
    picked.dedup();
    picked
}

#[tokio::test]
async fn paths_are_every_simple_path_on_generated_graphs() {
    let mut searches = 0;
    let mut by_length: BTreeMap<usize, usize> = BTreeMap::new();
    for seed in [1, 5, 9] {
        let (store, _dir) = store_with(&generated(seed)).await;
        let graph = Graph::of(&store).await;
        let starts = [
            "org1:learning:learning-3",
            "org0:experiment:experiment-5",
            "org2:value:value-1",
            "org1:barrier:barrier-2",
        ];
        let audiences = [Audience::Everything, Audience::Public, Audience::Member("org1".into())];
        let ways =
            [(TraceDirection::Downstream, [3, 6]), (TraceDirection::Upstream, [3, 6]), (TraceDirection::Both, [2, 4])];
        for (direction, depths) in ways {
            for max_depth in depths {
                for via in [vec![], vec![RelationshipKind::Influenced, RelationshipKind::Produced]] {
                    for audience in &audiences {
                        let ask = Ask { direction, max_depth, via: via.clone(), audience: audience.clone() };
                        for from in starts.map(id) {
                            if !graph.sees(&from, audience) {
                                let to = id("org0:value:value-0");
                                let refused = store.paths(&ask.request(&from, &to, 10)).await;
                                assert!(matches!(refused, Err(Error::NotFound(_))), "{from}: {refused:?}");
                                continue;
                            }
                            let reached = graph.every_path(&from, &ask);
                            for to in targets(&graph, &from, &reached, audience) {
                                let want = reached.get(&to).cloned().unwrap_or_default();
                                check(&store, &ask, &from, &to, &want).await;
                                searches += 1;
                                if let Some((_, edges)) = want.first() {
                                    *by_length.entry(edges.len()).or_default() += 1;
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    // The comparison means something only if it met long paths, short ones, and none at all.
    assert!(searches > 300, "{searches} searches");
    assert!(by_length.keys().any(|l| *l >= 5) && by_length.contains_key(&1), "shortest lengths met: {by_length:?}");
    assert!(by_length.values().sum::<usize>() < searches, "no search without a path: {by_length:?}");
}

/// Learnings of `t` (some PRIVATE) and an organisation `u`, joined by influences.
fn hidden_routes() -> String {
    let learning = |slug: &str, visibility: &str| {
        json!({ "id": format!("t:learning:{slug}"), "title": slug, "statement": slug, "kind": "MINDSET",
                "confidence": "HIGH", "embedding": "CAPTURED", "capturedOn": "2020-01-01", "visibility": visibility,
                "createdAt": "2020-01-01T00:00:00Z" })
    };
    let influence = |from: &str, to: &str| {
        json!({ "kind": "INFLUENCED", "from": format!("t:learning:{from}"), "to": format!("t:learning:{to}"),
                "how": "INFORMED_EXPERIMENT", "systemCondition": "PRACTICES", "on": "2021-01-01",
                "assertion": "INFERRED" })
    };
    json!({
        "format": "pvgraph/1",
        "nodes": [
            { "id": "t:organisation:t", "title": "T", "jurisdiction": "T", "purpose": "T" },
            { "id": "u:organisation:u", "title": "U", "jurisdiction": "U", "purpose": "U" },
            learning("a", "PUBLIC"), learning("b", "PUBLIC"), learning("c", "PUBLIC"), learning("d", "PUBLIC"),
            learning("z", "PUBLIC"), learning("near-start", "PRIVATE"), learning("near-target", "PRIVATE"),
        ],
        "relationships": [
            influence("a", "near-start"), influence("near-start", "z"),
            influence("a", "b"), influence("b", "near-target"), influence("near-target", "z"),
            influence("b", "c"), influence("c", "d"), influence("d", "z"),
        ],
    })
    .to_string()
}

#[tokio::test]
async fn the_shortest_routes_through_unseen_nodes_are_not_taken() {
    let (store, _dir) = store_with(&hidden_routes()).await;
    let nodes = |paths: &Paths| -> Vec<Vec<String>> {
        paths
            .paths
            .iter()
            .map(|(nodes, _)| nodes.iter().map(|n| n.as_str().trim_start_matches("t:learning:").to_owned()).collect())
            .collect()
    };
    let ask = |audience: Audience, direction: TraceDirection, max_depth: u32| Ask {
        direction,
        max_depth,
        via: vec![],
        audience,
    };
    let (a, z) = (id("t:learning:a"), id("t:learning:z"));
    for direction in [TraceDirection::Downstream, TraceDirection::Both] {
        for outsider in [Audience::Public, Audience::Member("u".into())] {
            let found = store.paths(&ask(outsider.clone(), direction, 6).request(&a, &z, 10)).await.unwrap();
            assert_eq!(nodes(&found), [["a", "b", "c", "d", "z"]], "{outsider:?}, {direction:?}");
            let short = store.paths(&ask(outsider, direction, 3).request(&a, &z, 10)).await.unwrap();
            assert!(short.paths.is_empty(), "{:?}", nodes(&short));
        }
        let member = store.paths(&ask(Audience::Member("t".into()), direction, 6).request(&a, &z, 10)).await.unwrap();
        assert_eq!(
            nodes(&member),
            [vec!["a", "near-start", "z"], vec!["a", "b", "near-target", "z"], vec!["a", "b", "c", "d", "z"]]
        );
    }
    // Walked back from the other end, the same.
    let back = store.paths(&ask(Audience::Public, TraceDirection::Upstream, 6).request(&z, &a, 10)).await.unwrap();
    assert_eq!(nodes(&back), [["z", "d", "c", "b", "a"]]);
    // An end the caller may not see is not found.
    let hidden = store
        .paths(&ask(Audience::Public, TraceDirection::Downstream, 6).request(&a, &id("t:learning:near-target"), 10))
        .await;
    assert!(matches!(hidden, Err(Error::NotFound(_))), "{hidden:?}");
}
