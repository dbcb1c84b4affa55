//! Traces and paths on Neo4j read ahead (see `src/store/neo4j/walk.rs`): one
//! statement gathers what the walk will look at several levels down. These
//! tests hold a generated graph with hidden nodes, dated influences and
//! relationships to another instance's ids, and check that whatever the
//! store reads ahead (all it may, a few nodes, one level at a time) every
//! trace and path search answers exactly as on SQLite holding the same graph,
//! with every node it answers whole, and that reading ahead sends fewer
//! statements.
//!
//! They need a Neo4j server: `PVGRAPH_TEST_NEO4J` holds its Bolt URI (user and
//! password from `PVGRAPH_NEO4J_USER` / `PVGRAPH_NEO4J_PASSWORD`); without it
//! they say so and pass. They empty its graph.

use std::collections::BTreeMap;

use chrono::{NaiveDate, TimeZone, Utc};
use pvgraph::domain::{Audience, Change, Edge, EdgeRecord, NodeId, NodePatch, RelationshipKind, SeedFile};
use pvgraph::store::neo4j::{BALL_NODES, Neo4jStore};
use pvgraph::store::traverse::MAX_TRACE_NODES;
use pvgraph::store::{
    self, GraphStore, Neo4jOptions, PathRequest, Paths, Store, StoreLocation, Trace, TraceDirection, TraceRequest,
};
use serde_json::{Value, json};

fn id(text: &str) -> NodeId {
    NodeId::parse(text).unwrap()
}

fn edge(record: Value) -> Edge {
    EdgeRecord::from_json(record).and_then(EdgeRecord::into_edge).expect("a valid edge")
}

/// Four generated organisations; some of org0's and org1's nodes hidden from some callers; and
/// relationships between org0's nodes and ids of an instance this one does not hold, both ways.
fn graph() -> Vec<Change> {
    let mut text = Vec::new();
    pvgraph::generate::write(pvgraph::generate::Plan { organisations: 4, seed: 11 }, &mut text).unwrap();
    let now = Utc.with_ymd_and_hms(2025, 1, 2, 3, 4, 5).unwrap();
    let mut changes = SeedFile::parse(std::str::from_utf8(&text).unwrap()).unwrap().into_changes(now).unwrap().0;
    for org in 0..2 {
        for n in 0..34 {
            let visibility = match n % 5 {
                0 => "PRIVATE",
                2 => "PARTNERS",
                _ => continue,
            };
            let mut fields = serde_json::Map::new();
            fields.insert("visibility".into(), visibility.into());
            // As many of each kind as `generate` makes.
            for (kind, count) in [("learning", 34), ("experiment", 28), ("principle", 14)] {
                if n < count {
                    let id = id(&format!("org{org}:{kind}:{kind}-{n}"));
                    changes.push(Change::Update { id, patch: NodePatch(fields.clone()) });
                }
            }
        }
    }
    for n in 0..6 {
        changes.push(Change::Link(edge(json!({
            "kind": "INFLUENCED", "from": format!("org0:learning:learning-{n}"), "to": format!("far:principle:p-{n}"),
            "how": "REVISED_PRINCIPLE", "systemCondition": "MENTAL_MODELS", "on": "2024-12-30",
            "strength": "STRONG", "assertion": "INFERRED"
        }))));
        changes.push(Change::Link(edge(json!({
            "kind": "INFLUENCED", "from": format!("far:learning:l-{n}"), "to": format!("org0:principle:principle-{n}"),
            "how": "SHIFTED_MINDSET", "systemCondition": "RELATIONSHIPS", "on": "2020-01-01",
            "strength": "WEAK", "assertion": "INFERRED"
        }))));
        changes.push(Change::Link(edge(json!({
            "kind": "UPHOLDS", "from": format!("org0:principle:principle-{n}"), "to": "far:value:v"
        }))));
    }
    changes
}

/// The graph on SQLite and on Neo4j, with a Neo4j store for each way of reading ahead.
struct Stores {
    sqlite: Store,
    /// Reading ahead as far as it may; a few nodes at a time; one level at a time.
    neo4j: Vec<(&'static str, Neo4jStore)>,
    _dir: tempfile::TempDir,
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

/// Serialises these tests: they share one database.
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn stores() -> Option<Stores> {
    let Some(uri) = std::env::var("PVGRAPH_TEST_NEO4J").ok().filter(|u| !u.is_empty()) else {
        eprintln!("note: PVGRAPH_TEST_NEO4J is not set; skipping this Neo4j walk test");
        return None;
    };
    let turn = TURN.lock().await;
    let var = |name: &str, default: &str| std::env::var(name).ok().filter(|v| !v.is_empty()).unwrap_or(default.into());
    let options = Neo4jOptions {
        user: var("PVGRAPH_NEO4J_USER", "neo4j"),
        password: var("PVGRAPH_NEO4J_PASSWORD", "pvgraph-dev-password"),
        ..Neo4jOptions::default()
    };
    let mut neo4j = Vec::new();
    for (name, walk_ahead) in [("ahead", BALL_NODES), ("a few ahead", 6), ("level by level", 0)] {
        neo4j.push((name, Neo4jStore::open(&uri, &Neo4jOptions { walk_ahead, ..options.clone() }).await.unwrap()));
    }
    let config = neo4rs::ConfigBuilder::default().uri(uri.as_str()).user(options.user).password(options.password);
    let raw = neo4rs::Graph::connect(config.build().unwrap()).unwrap();
    raw.run(neo4rs::query("MATCH (n) DETACH DELETE n")).await.unwrap();
    neo4j[0].1.apply(graph()).await.map_err(|f| f.error).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sqlite = store::open(&StoreLocation::Sqlite(dir.path().join("reference.db"))).await.unwrap();
    sqlite.apply(graph()).await.map_err(|f| f.error).unwrap();
    Some(Stores { sqlite, neo4j, _dir: dir, _turn: turn })
}

fn audiences() -> [Audience; 4] {
    [Audience::Everything, Audience::Public, Audience::Member("org0".into()), Audience::Member("org2".into())]
}

/// A trace as plain text: nodes with depths in order, sorted relationships, parents, truncation.
fn trace_text(trace: &Trace) -> String {
    let nodes: Vec<(String, u32)> = trace.nodes.iter().map(|(n, d)| (n.id.to_string(), *d)).collect();
    let mut edges: Vec<String> = trace.edges.iter().map(|e| format!("{e:?}")).collect();
    edges.sort();
    let parents: BTreeMap<String, String> =
        trace.parents.iter().map(|(k, e)| (k.to_string(), format!("{e:?}"))).collect();
    format!("{nodes:?}\n{edges:?}\n{parents:?}\n{:?}", trace.truncated)
}

/// Paths as plain text: each path's nodes and relationships in order, the nodes' ids, truncation.
fn paths_text(paths: &Paths) -> String {
    let found: Vec<String> = paths.paths.iter().map(|p| format!("{p:?}")).collect();
    let nodes: Vec<String> = paths.nodes.iter().map(|n| n.id.to_string()).collect();
    format!("{found:?}\n{nodes:?}\n{:?}", paths.truncated)
}

fn trace_requests() -> Vec<TraceRequest> {
    let mut all = Vec::new();
    let plain = |from: &str, direction, max_depth, audience| TraceRequest {
        from: id(from),
        direction,
        max_depth,
        via: vec![],
        kinds: vec![],
        as_of: None,
        audience,
        max_nodes: MAX_TRACE_NODES,
    };
    for from in [
        "org0:learning:learning-3",
        "org0:value:value-0",
        "org1:experiment:experiment-1",
        "org1:experiment:experiment-5",
    ] {
        for direction in [TraceDirection::Downstream, TraceDirection::Upstream, TraceDirection::Both] {
            for max_depth in [1, 4, 10] {
                for audience in audiences() {
                    all.push(plain(from, direction, max_depth, audience));
                }
            }
        }
    }
    for audience in audiences() {
        let start = || plain("org0:principle:principle-1", TraceDirection::Both, 6, audience.clone());
        all.push(TraceRequest { via: vec![RelationshipKind::Influenced, RelationshipKind::Produced], ..start() });
        all.push(TraceRequest { as_of: NaiveDate::from_ymd_opt(2019, 6, 1), ..start() });
        all.push(TraceRequest { max_nodes: 7, ..start() });
        all.push(TraceRequest { max_nodes: 40, direction: TraceDirection::Upstream, ..start() });
        all.push(TraceRequest {
            via: vec![RelationshipKind::Influenced, RelationshipKind::Upholds],
            as_of: NaiveDate::from_ymd_opt(2021, 1, 1),
            max_nodes: 25,
            ..start()
        });
    }
    all
}

fn path_requests() -> Vec<PathRequest> {
    let mut all = Vec::new();
    let pairs = [
        ("org0:learning:learning-3", "org0:value:value-0", TraceDirection::Downstream),
        ("org0:value:value-1", "org0:experiment:experiment-2", TraceDirection::Upstream),
        ("org0:learning:learning-7", "org1:learning:learning-4", TraceDirection::Both),
        ("org0:principle:principle-2", "org0:value:value-3", TraceDirection::Downstream),
    ];
    for (from, to, direction) in pairs {
        for (max_depth, via) in [(3, vec![]), (6, vec![]), (6, vec![RelationshipKind::Influenced])] {
            for audience in audiences() {
                let (from, to, via) = (id(from), id(to), via.clone());
                all.push(PathRequest { from, to, direction, max_depth, via, first: 50, audience });
            }
        }
    }
    all
}

#[tokio::test]
async fn walks_answer_as_on_sqlite_however_far_they_read_ahead() {
    let Some(stores) = stores().await else { return };
    let (mut capped, mut hidden, mut found) = (0, 0, 0);
    for request in trace_requests() {
        let want = stores.sqlite.trace(&request).await.map(|t| trace_text(&t)).map_err(|e| e.code());
        for (name, neo4j) in &stores.neo4j {
            let got = neo4j.trace(&request).await.map(|t| trace_text(&t)).map_err(|e| e.code());
            assert_eq!(got, want, "{name}: {request:?}");
        }
        capped += want.as_ref().is_ok_and(|t| t.contains("--max-trace-nodes")) as usize;
        hidden += want.is_err() as usize;
    }
    // How many paths each request finds for each audience, to check that hiding narrows some.
    let mut counts: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for request in path_requests() {
        let want = stores.sqlite.paths(&request).await.map(|p| paths_text(&p)).map_err(|e| e.code());
        for (name, neo4j) in &stores.neo4j {
            let got = neo4j.paths(&request).await.map(|p| paths_text(&p)).map_err(|e| e.code());
            assert_eq!(got, want, "{name}: {request:?}");
        }
        found += want.is_ok_and(|p| !p.starts_with("[]")) as usize;
        let asked =
            format!("{} {} {:?} {} {:?}", request.from, request.to, request.direction, request.max_depth, request.via);
        let many = stores.sqlite.paths(&request).await.map_or(0, |p| p.paths.len());
        counts.entry(asked).or_default().push(many);
    }
    // The requests reach the cases they are for.
    assert!(capped > 0, "no trace reached its node cap");
    assert!(hidden > 0, "no start was hidden from its caller");
    assert!(found > 0, "no path was found");
    // Some path runs through a node one audience may not step through and another may: the
    // path search's balls carry only who may see each node, and that must hide it.
    assert!(
        counts.values().any(|n| n.iter().any(|&c| c > 0) && n.iter().any(|&c| c != n[0])),
        "no path search found fewer paths for a narrower audience: {counts:?}"
    );
}

#[tokio::test]
async fn walks_answer_whole_nodes() {
    let Some(stores) = stores().await else { return };
    let (_, neo4j) = &stores.neo4j[0];
    let whole = |nodes: Vec<pvgraph::domain::Node>| nodes.iter().map(|n| format!("{n:?}")).collect::<Vec<_>>();
    let mut checked = 0;
    for request in path_requests() {
        let Ok(found) = neo4j.paths(&request).await else { continue };
        let ids: Vec<NodeId> = found.nodes.iter().map(|n| n.id.clone()).collect();
        // Each node of a path as the node lookup reads it: every property, not only its visibility.
        assert_eq!(whole(found.nodes), whole(neo4j.nodes(&ids).await.unwrap()), "{request:?}");
        checked += ids.len();
    }
    for request in trace_requests() {
        let Ok(traced) = neo4j.trace(&request).await else { continue };
        let ids: Vec<NodeId> = traced.nodes.iter().map(|(n, _)| n.id.clone()).collect();
        let nodes = traced.nodes.into_iter().map(|(n, _)| n).collect();
        assert_eq!(whole(nodes), whole(neo4j.nodes(&ids).await.unwrap()), "{request:?}");
        checked += ids.len();
    }
    assert!(checked > 0, "no node was checked");
}

#[tokio::test]
async fn reading_ahead_saves_statements() {
    let Some(stores) = stores().await else { return };
    let [(_, ahead), _, (_, level_by_level)] = &stores.neo4j[..] else { unreachable!() };
    let trace = TraceRequest {
        from: id("org0:learning:learning-3"),
        direction: TraceDirection::Downstream,
        max_depth: 4,
        via: vec![],
        kinds: vec![],
        as_of: None,
        audience: Audience::Public,
        max_nodes: MAX_TRACE_NODES,
    };
    let paths = PathRequest {
        from: id("org0:learning:learning-3"),
        to: id("org0:value:value-0"),
        direction: TraceDirection::Downstream,
        max_depth: 6,
        via: vec![],
        first: 50,
        audience: Audience::Member("org0".into()),
    };
    let count = |store: &Neo4jStore| {
        let (store, trace, paths) = (store.clone(), trace.clone(), paths.clone());
        async move {
            let before = store.reads();
            let traced = store.trace(&trace).await.unwrap();
            let between = store.reads();
            let found = store.paths(&paths).await.unwrap();
            (between - before, store.reads() - between, traced, found)
        }
    };
    let (trace_ahead, paths_ahead, traced, found) = count(ahead).await;
    let (trace_levels, paths_levels, ..) = count(level_by_level).await;
    assert!(traced.nodes.iter().any(|(_, depth)| *depth >= 3), "the trace is deep: {:?}", traced.nodes);
    assert!(!found.paths.is_empty(), "a path is found");
    // The start with the whole walk, in one statement.
    assert_eq!(trace_ahead, 1, "a depth-4 trace read ahead");
    // The two ends with a walk from each (the search grows from both ends), then the paths' nodes.
    assert_eq!(paths_ahead, 2, "a path search read ahead");
    // One level at a time, each level is a statement (relationships and their far ends together).
    assert!(trace_levels > trace_ahead + 2, "{trace_levels} statements level by level");
    assert!(paths_levels > paths_ahead + 2, "{paths_levels} statements level by level");
}

#[tokio::test]
async fn relationships_come_with_their_far_ends_in_one_statement() {
    let Some(stores) = stores().await else { return };
    let (_, neo4j) = &stores.neo4j[0];
    let ids = [id("org0:experiment:experiment-1"), id("org0:principle:principle-1"), id("org0:learning:learning-5")];
    let mut ends_read = 0;
    for audience in audiences() {
        for direction in [store::Direction::Out, store::Direction::In] {
            let before = neo4j.reads();
            let (edges, ends) = neo4j.visible_edges_and_ends(&ids, direction, &audience).await.unwrap();
            assert_eq!(neo4j.reads() - before, 1, "one statement");
            let want = stores.sqlite.visible_edges(&ids, direction, &audience).await.unwrap();
            let sorted = |edges: &[Edge]| {
                let mut all: Vec<String> = edges.iter().map(|e| format!("{e:?}")).collect();
                all.sort();
                all
            };
            assert_eq!(sorted(&edges), sorted(&want), "{audience:?} {direction:?}");
            // Every far end, whole, as the node lookup gives it to this audience.
            let mut far: Vec<NodeId> = edges
                .iter()
                .map(|e| if direction == store::Direction::Out { e.to.clone() } else { e.from.clone() })
                .collect();
            far.sort();
            far.dedup();
            let mut want: Vec<String> =
                stores.sqlite.nodes(&far).await.unwrap().iter().map(|n| n.id.to_string()).collect();
            let mut got: Vec<String> = ends.iter().map(|n| n.id.to_string()).collect();
            got.sort();
            got.dedup();
            want.sort();
            assert_eq!(got, want, "{audience:?} {direction:?}");
            let whole = neo4j.nodes(&far).await.unwrap();
            assert!(ends.iter().all(|n| whole.iter().any(|w| format!("{w:?}") == format!("{n:?}"))));
            ends_read += ends.len();
        }
    }
    assert!(ends_read > 0, "some far ends were read");
}
