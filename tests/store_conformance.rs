//! One store conformance suite, written once against the `GraphStore` trait and
//! run for every backend: SQLite always (a temporary file), Neo4j when
//! `PVGRAPH_TEST_NEO4J` holds a Bolt URI (user and password from
//! `PVGRAPH_NEO4J_USER` / `PVGRAPH_NEO4J_PASSWORD`, by default `neo4j` /
//! `pvgraph-dev-password`). Without it the Neo4j tests say so and pass.
//!
//! Where a result is not fixed by the seed alone (traces, paths, search,
//! lists), the backend under test is compared with a SQLite reference holding
//! the same graph, so the backends cannot drift apart.
//!
//! The Neo4j tests share one database: each holds a lock for its whole run and
//! starts by wiping the graph.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use pvgraph::domain::{
    Actor, Applied, Audience, Caller, Change, Confirmation, Edge, EdgeRecord, Error, Member, Node, NodeId, NodeKind,
    NodePatch, RelationshipKind, Role, SeedFile,
};
use pvgraph::store::{
    self, ApiToken, AuditEntry, AuditQuery, Direction, FieldTest, GraphStore, ListQuery, Neo4jOptions, NodeFilter,
    OrderField, PathRequest, Position, SearchRequest, Store, StoreLocation, TraceDirection, TraceRequest,
};
use serde_json::{Value, json};

// ---------------------------------------------------------------------------
// Backends
// ---------------------------------------------------------------------------

/// A store under test and what keeps it alive: its folder, or the Neo4j lock.
struct Backend {
    store: Store,
    _dir: Option<tempfile::TempDir>,
    _lock: Option<tokio::sync::MutexGuard<'static, ()>>,
}

async fn sqlite_store(dir: &tempfile::TempDir, name: &str) -> Store {
    store::open(&StoreLocation::Sqlite(dir.path().join(name))).await.expect("the SQLite store opens")
}

async fn sqlite() -> Option<Backend> {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let store = sqlite_store(&dir, "under-test.db").await;
    Some(Backend { store, _dir: Some(dir), _lock: None })
}

/// Serialises the Neo4j tests: they share one database.
static NEO4J: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn neo4j_uri() -> Option<String> {
    std::env::var("PVGRAPH_TEST_NEO4J").ok().filter(|u| !u.is_empty())
}

fn neo4j_options() -> Neo4jOptions {
    let var = |name: &str, default: &str| std::env::var(name).ok().filter(|v| !v.is_empty()).unwrap_or(default.into());
    Neo4jOptions {
        user: var("PVGRAPH_NEO4J_USER", "neo4j"),
        password: var("PVGRAPH_NEO4J_PASSWORD", "pvgraph-dev-password"),
        database: std::env::var("PVGRAPH_NEO4J_DATABASE").ok().filter(|d| !d.is_empty()),
        ..Neo4jOptions::default()
    }
}

async fn neo4j() -> Option<Backend> {
    let Some(uri) = neo4j_uri() else {
        eprintln!("note: PVGRAPH_TEST_NEO4J is not set; skipping this Neo4j conformance test");
        return None;
    };
    let lock = NEO4J.lock().await;
    let options = neo4j_options();
    let location: StoreLocation = uri.parse().expect("PVGRAPH_TEST_NEO4J is a Bolt URI");
    let store = store::open_with(&location, &options).await.expect("the Neo4j store opens");
    // Start from an empty graph (the constraints and indexes stay).
    let mut config = neo4rs::ConfigBuilder::default().uri(uri.as_str()).user(options.user).password(options.password);
    if let Some(db) = options.database {
        config = config.db(db);
    }
    let graph = neo4rs::Graph::connect(config.build().unwrap()).expect("a Neo4j connection");
    graph.run(neo4rs::query("MATCH (n) DETACH DELETE n")).await.expect("the graph is wiped");
    assert!(store.is_empty().await.unwrap());
    Some(Backend { store, _dir: None, _lock: Some(lock) })
}

/// Every check, run for one backend.
macro_rules! conformance {
    ($backend:ident: $($check:ident),+ $(,)?) => {
        mod $backend {
            $(
                #[tokio::test]
                async fn $check() {
                    let Some(backend) = super::$backend().await else { return };
                    super::checks::$check(&backend.store).await;
                }
            )+
        }
    };
}

macro_rules! suite {
    ($($backend:ident),+) => {
        $(conformance!($backend:
            seed_loads_and_dumps_as_on_sqlite,
            dump_is_exactly_the_graph_applied,
            nodes_by_ids,
            lists_filter_order_and_page_as_on_sqlite,
            field_lists_are_the_whole_kind_filtered_in_every_order,
            counts_match_sqlite,
            edges_both_directions,
            relationships_come_with_their_far_ends,
            every_change_kind,
            refusals_leave_nothing_behind,
            traces_match_sqlite,
            trace_cap_counts_the_nodes_shown,
            paths_match_sqlite,
            search_ranks_the_obvious_hit_first,
            analysts_queries_match_sqlite,
            awkward_strings_round_trip,
            copy_round_trip_loses_nothing,
            concurrent_change_sets_are_serialised,
            ping_answers,
            foreign_edges_read_both_ways,
            foreign_edges_follow_the_rules,
            a_partner_linked_here_becomes_local_only_once_unlinked,
            foreign_edges_are_removed_with_their_local_node,
            foreign_edges_obey_the_actor,
            foreign_edges_survive_dump_import_and_copy,
            writes_wait_for_the_callers_confirmation,
        );)+
    };
}

suite!(sqlite, neo4j);

/// A Neo4j server that is not there fails fast and says the store is unavailable.
#[tokio::test]
async fn neo4j_down_fails_fast_as_unavailable() {
    // Nothing listens on port 1 of the loopback address.
    let options = Neo4jOptions { connect_timeout: Duration::from_secs(2), ..neo4j_options() };
    let started = Instant::now();
    let outcome = store::open_with(&"bolt://127.0.0.1:1".parse().unwrap(), &options).await;
    assert!(matches!(outcome, Err(Error::Unavailable(_))), "{:?}", outcome.err());
    assert_eq!(outcome.err().unwrap().code(), "UNAVAILABLE");
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
}

/// Every list of the seed the API can ask for, as ids: each kind, filter, order and direction.
async fn every_list(store: &Store) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for &kind in NodeKind::ALL {
        for filter in filters(kind) {
            for order in ORDERS {
                for descending in [false, true] {
                    out.push(ids(&store.list(&list(kind, filter.clone(), order, descending)).await.unwrap()));
                }
            }
        }
    }
    out
}

/// The indexes of a SQLite file: (name, statement), by name.
fn sqlite_indexes(conn: &rusqlite::Connection) -> Vec<(String, String)> {
    let mut stmt = conn
        .prepare("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL ORDER BY name")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(Result::unwrap).collect()
}

/// A store made at schema version 4 (before lists had an index per order) is
/// brought up to date when opened, and answers every list as before.
#[tokio::test]
async fn a_store_of_schema_version_4_migrates_and_lists_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let store = sqlite_store(&dir, "old.db").await;
    load_fixed_seed(&store).await;
    let lists = every_list(&store).await;
    drop(store);

    // Turn the file back into version 4: version 6's graph version and version 5's indexes out,
    // version 1's field indexes in.
    let version_1 = include_str!("../src/store/sqlite/schema.sql");
    let version_5 = include_str!("../src/store/sqlite/lists.sql");
    let conn = rusqlite::Connection::open(&path).unwrap();
    let index_name = |line: &str| line.strip_prefix("CREATE INDEX ")?.split_whitespace().next().map(str::to_owned);
    let version_6 = include_str!("../src/store/sqlite/walks.sql");
    let trigger_name = |line: &str| line.strip_prefix("CREATE TRIGGER ")?.split_whitespace().next().map(str::to_owned);
    for name in version_6.lines().filter_map(trigger_name) {
        conn.execute_batch(&format!("DROP TRIGGER {name}")).unwrap();
    }
    conn.execute_batch("DROP TABLE graph_version").unwrap();
    for name in version_5.lines().filter_map(index_name) {
        conn.execute_batch(&format!("DROP INDEX {name}")).unwrap();
    }
    for line in version_1.lines().filter(|l| l.starts_with("CREATE INDEX") && l.contains("json_extract")) {
        conn.execute_batch(line).unwrap();
    }
    conn.execute_batch("PRAGMA user_version = 4").unwrap();
    // It is now what versions 1 to 4 make of an empty file.
    let fresh = rusqlite::Connection::open_in_memory().unwrap();
    for sql in [
        version_1,
        include_str!("../src/store/sqlite/search.sql"),
        include_str!("../src/store/sqlite/access.sql"),
        include_str!("../src/store/sqlite/foreign.sql"),
    ] {
        fresh.execute_batch(sql).unwrap();
    }
    assert_eq!(sqlite_indexes(&conn), sqlite_indexes(&fresh));
    assert!(sqlite_indexes(&conn).iter().any(|(name, _)| name == "learnings_by_embedding"));
    drop(conn);

    let store = sqlite_store(&dir, "old.db").await;
    assert_eq!(every_list(&store).await, lists);
    drop(store);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    assert_eq!(version, 6);
    let names: Vec<String> = sqlite_indexes(&conn).into_iter().map(|(name, _)| name).collect();
    assert!(names.contains(&"learnings_by_embedding_id".to_owned()), "{names:?}");
    assert!(!names.contains(&"learnings_by_embedding".to_owned()), "{names:?}");
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// A fixed clock, so that two loads of the seed give identical graphs.
fn fixed_now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 2, 3, 4, 5).unwrap()
}

fn seed_changes() -> Vec<Change> {
    SeedFile::parse(pvgraph::seed::KING_COUNTY).unwrap().into_changes(fixed_now()).unwrap().0
}

async fn load_fixed_seed(store: &Store) {
    store.apply(seed_changes()).await.map_err(|f| f.error).expect("the seed applies");
}

/// A SQLite store holding the seed, to compare against.
async fn reference() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite_store(&dir, "reference.db").await;
    load_fixed_seed(&store).await;
    (store, dir)
}

fn id(text: &str) -> NodeId {
    NodeId::parse(text).unwrap()
}

fn ids(nodes: &[Node]) -> Vec<String> {
    nodes.iter().map(|n| n.id.to_string()).collect()
}

fn node_json(node: &Node) -> String {
    Value::Object(node.to_record()).to_string()
}

fn edge_json(edge: &Edge) -> String {
    Value::Object(EdgeRecord::from_edge(edge).into_json()).to_string()
}

fn sorted_nodes(nodes: &[Node]) -> Vec<String> {
    let mut out: Vec<String> = nodes.iter().map(node_json).collect();
    out.sort();
    out
}

fn sorted_edges(edges: &[Edge]) -> Vec<String> {
    let mut out: Vec<String> = edges.iter().map(edge_json).collect();
    out.sort();
    out
}

fn node(record: Value) -> Node {
    let Value::Object(map) = record else { panic!("a record is an object") };
    Node::from_record(map, fixed_now()).expect("a valid node")
}

fn edge(record: Value) -> Edge {
    EdgeRecord::from_json(record).and_then(EdgeRecord::into_edge).expect("a valid edge")
}

fn patch(fields: Value) -> NodePatch {
    let Value::Object(map) = fields else { panic!("a patch is an object") };
    NodePatch(map)
}

fn list(kind: NodeKind, filter: NodeFilter, order: OrderField, descending: bool) -> ListQuery {
    ListQuery { kind, filter, order, descending, after: None, before: None, limit: 1000, from_end: false }
}

/// Every filter the API builds, for one kind.
fn filters(kind: NodeKind) -> Vec<NodeFilter> {
    let mut all = vec![
        NodeFilter::default(),
        NodeFilter { organisations: vec!["kc".into()], ..NodeFilter::default() },
        NodeFilter { organisations: vec!["cpi".into(), "nobody".into()], ..NodeFilter::default() },
        NodeFilter { title_contains: Some("RE".into()), ..NodeFilter::default() },
        NodeFilter { title_contains: Some("équité".into()), ..NodeFilter::default() },
        NodeFilter { tags: vec!["programme".into(), "metro".into()], ..NodeFilter::default() },
        NodeFilter {
            organisations: vec!["kc".into()],
            title_contains: Some("e".into()),
            tags: vec!["programme".into()],
            ..NodeFilter::default()
        },
    ];
    let field = |test: FieldTest| NodeFilter { fields: vec![test], ..NodeFilter::default() };
    let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    match kind {
        NodeKind::Principle => {
            all.push(field(FieldTest::OneOf("status", words(&["ADOPTED"]))));
            all.push(field(FieldTest::OneOf("status", words(&["REVISED", "RETIRED"]))));
        }
        NodeKind::Barrier => {
            all.push(field(FieldTest::OneOf("kind", words(&["CULTURAL", "PERSONAL"]))));
            all.push(field(FieldTest::AtLeast("severity", 4)));
            for present in [true, false] {
                all.push(NodeFilter {
                    related: vec![(RelationshipKind::Addresses, Direction::In, present)],
                    ..NodeFilter::default()
                });
            }
        }
        NodeKind::Experiment => {
            all.push(field(FieldTest::OneOf("status", words(&["COMPLETED"]))));
            all.push(field(FieldTest::AtLeast("evidenceLevel", 2)));
            all.push(NodeFilter {
                related: vec![(RelationshipKind::Produced, Direction::Out, true)],
                fields: vec![FieldTest::OneOf("status", words(&["COMPLETED", "RUNNING"]))],
                ..NodeFilter::default()
            });
        }
        NodeKind::Learning => {
            all.push(field(FieldTest::OneOf("kind", words(&["MINDSET"]))));
            all.push(field(FieldTest::OneOf("confidence", words(&["LOW", "VERY_LOW"]))));
            all.push(field(FieldTest::OneOf("embedding", words(&["EMBEDDED"]))));
            all.push(NodeFilter {
                related: vec![(RelationshipKind::Influenced, Direction::Out, false)],
                ..NodeFilter::default()
            });
        }
        _ => {}
    }
    all
}

const ORDERS: [OrderField; 4] = [OrderField::Id, OrderField::Title, OrderField::CreatedAt, OrderField::UpdatedAt];

fn expect_err<T: std::fmt::Debug>(outcome: Result<T, pvgraph::store::Failed>) -> (usize, Error) {
    let failed = outcome.expect_err("the change set is refused");
    (failed.index, failed.error)
}

fn reason(error: &Error) -> Option<&'static str> {
    match error {
        Error::Invalid { reason, .. } => *reason,
        _ => None,
    }
}

// ---------------------------------------------------------------------------
// The checks
// ---------------------------------------------------------------------------

mod checks {
    use super::*;

    pub async fn ping_answers(store: &Store) {
        store.ping().await.expect("ping");
        assert!(["sqlite", "neo4j"].contains(&store.backend()));
    }

    pub async fn seed_loads_and_dumps_as_on_sqlite(store: &Store) {
        assert!(store.is_empty().await.unwrap());
        let started = Instant::now();
        let loaded = pvgraph::seed::load(store, pvgraph::seed::KING_COUNTY).await.expect("the seed loads");
        eprintln!("{}: the King County seed loaded in {:?}", store.backend(), started.elapsed());
        assert_eq!((loaded.nodes, loaded.relationships), (74, 232));
        assert!(!store.is_empty().await.unwrap());
        let (nodes, edges) = store.dump().await.unwrap();
        assert_eq!((nodes.len(), edges.len()), (74, 232));
        // `seed::load` stamps records without `updatedAt` with the time of loading.
        let (reference, _dir) = reference().await;
        let (want_nodes, want_edges) = reference.dump().await.unwrap();
        let without_update_time = |nodes: &[Node]| {
            let mut out: Vec<String> = nodes
                .iter()
                .map(|n| {
                    let mut record = n.to_record();
                    record.remove("updatedAt");
                    Value::Object(record).to_string()
                })
                .collect();
            out.sort();
            out
        };
        assert_eq!(without_update_time(&nodes), without_update_time(&want_nodes));
        assert_eq!(sorted_edges(&edges), sorted_edges(&want_edges));
    }

    pub async fn dump_is_exactly_the_graph_applied(store: &Store) {
        load_fixed_seed(store).await;
        let (reference, _dir) = reference().await;
        let (nodes, edges) = store.dump().await.unwrap();
        let (want_nodes, want_edges) = reference.dump().await.unwrap();
        assert_eq!(sorted_nodes(&nodes), sorted_nodes(&want_nodes));
        assert_eq!(sorted_edges(&edges), sorted_edges(&want_edges));
        // Relationships come sorted by (from, kind, to) on every backend.
        let keys: Vec<_> = edges.iter().map(|e| (e.from.to_string(), e.kind.as_str(), e.to.to_string())).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
    }

    pub async fn nodes_by_ids(store: &Store) {
        load_fixed_seed(store).await;
        assert!(store.nodes(&[]).await.unwrap().is_empty());
        let wanted = [
            id("kc:principle:take-the-right-risks"),
            id("kc:organisation:kc"),
            id("kc:value:nothing-here"),
            id("cpi:learning:innovation-is-a-mindset"),
            id("kc:principle:take-the-right-risks"),
        ];
        let mut got = ids(&store.nodes(&wanted).await.unwrap());
        got.sort();
        assert_eq!(
            got,
            ["cpi:learning:innovation-is-a-mindset", "kc:organisation:kc", "kc:principle:take-the-right-risks"]
        );
        let (reference, _dir) = reference().await;
        let all: Vec<NodeId> = reference.dump().await.unwrap().0.into_iter().map(|n| n.id).collect();
        assert_eq!(
            sorted_nodes(&store.nodes(&all).await.unwrap()),
            sorted_nodes(&reference.nodes(&all).await.unwrap())
        );
    }

    pub async fn lists_filter_order_and_page_as_on_sqlite(store: &Store) {
        load_fixed_seed(store).await;
        let (reference, _dir) = reference().await;
        let mut compared = 0;
        for &kind in NodeKind::ALL {
            for filter in filters(kind) {
                // Every order both ways on the whole kind and one narrower filter; two orders on the
                // other filters (each query shape costs a cold Neo4j a plan, so the matrix is kept lean).
                let every_order = filter == NodeFilter::default() || filter.organisations == ["kc"];
                let orders: Vec<(OrderField, bool)> = if every_order {
                    ORDERS.iter().flat_map(|&o| [(o, false), (o, true)]).collect()
                } else {
                    vec![(OrderField::Title, false), (OrderField::UpdatedAt, true)]
                };
                for (order, descending) in orders {
                    let query = list(kind, filter.clone(), order, descending);
                    let got = store.list(&query).await.unwrap();
                    let want = reference.list(&query).await.unwrap();
                    assert_eq!(ids(&got), ids(&want), "{kind:?} {filter:?} {order:?} desc={descending}");
                    assert_eq!(sorted_nodes(&got), sorted_nodes(&want));
                    compared += 1;
                    if every_order {
                        page_through(store, &query, &got).await;
                    }
                }
            }
        }
        assert!(compared > 150, "{compared}");
        // Some filters must find something, or the comparison proves little.
        let query = list(
            NodeKind::Barrier,
            NodeFilter { fields: vec![FieldTest::AtLeast("severity", 5)], ..NodeFilter::default() },
            OrderField::Id,
            false,
        );
        assert_eq!(
            ids(&store.list(&query).await.unwrap()),
            ["kc:barrier:historic-distrust-between-communities-and-county", "kc:barrier:logic-of-risk-avoidance"]
        );
        let query = list(
            NodeKind::Principle,
            NodeFilter { title_contains: Some("RIGHT RISKS".into()), ..NodeFilter::default() },
            OrderField::Title,
            false,
        );
        assert_eq!(ids(&store.list(&query).await.unwrap()), ["kc:principle:take-the-right-risks"]);
    }

    /// A list filtered by one of a kind's own fields (read from an index in the
    /// list's order, word by word) is the kind's whole list in that order with
    /// only the nodes whose field holds one of the words, whatever the words'
    /// number, repetition or order; and it pages as that list.
    pub async fn field_lists_are_the_whole_kind_filtered_in_every_order(store: &Store) {
        load_fixed_seed(store).await;
        let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let cases: [(NodeKind, &str, Vec<Vec<String>>); 5] = [
            (NodeKind::Principle, "status", vec![words(&["ADOPTED"]), words(&["RETIRED", "ADOPTED", "RETIRED"])]),
            (NodeKind::Experiment, "status", vec![words(&["COMPLETED"]), words(&["RUNNING", "COMPLETED"])]),
            (NodeKind::Barrier, "kind", vec![words(&["CULTURAL"]), words(&["PERSONAL", "CULTURAL", "NOBODY"])]),
            (NodeKind::Learning, "kind", vec![words(&["MINDSET"])]),
            (NodeKind::Learning, "embedding", vec![words(&["EMBEDDED"]), words(&["SHARED", "EMBEDDED"])]),
        ];
        let mut found = 0;
        for (kind, field, lists) in cases {
            for chosen in lists {
                for audience in [Audience::Everything, Audience::Member("kc".into())] {
                    for order in ORDERS {
                        for descending in [false, true] {
                            let whole = list(
                                kind,
                                NodeFilter { audience: audience.clone(), ..NodeFilter::default() },
                                order,
                                descending,
                            );
                            let whole = store.list(&whole).await.unwrap();
                            let want: Vec<&Node> = whole
                                .iter()
                                .filter(|n| {
                                    let details = n.details.to_json();
                                    details
                                        .get(field)
                                        .and_then(Value::as_str)
                                        .is_some_and(|w| chosen.iter().any(|c| c == w))
                                })
                                .collect();
                            let filter = NodeFilter {
                                fields: vec![FieldTest::OneOf(field, chosen.clone())],
                                audience: audience.clone(),
                                ..NodeFilter::default()
                            };
                            let query = list(kind, filter, order, descending);
                            let got = store.list(&query).await.unwrap();
                            let want_ids: Vec<String> = want.iter().map(|n| n.id.to_string()).collect();
                            assert_eq!(ids(&got), want_ids, "{kind:?} {field} {chosen:?} {order:?} desc={descending}");
                            found += got.len();
                            page_through(store, &query, &got).await;
                        }
                    }
                }
            }
        }
        assert!(found > 100, "the filters find too little to prove anything: {found}");
    }

    /// Pages through a full list with keyset windows, forwards and backwards,
    /// and checks each window against the full list.
    async fn page_through(store: &Store, query: &ListQuery, all: &[Node]) {
        let position = |n: &Node| Position { key: query.order.key(n), id: n.id.to_string() };
        let all_ids = ids(all);
        // Forwards, three at a time.
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = store.list(&ListQuery { after: after.clone(), limit: 3, ..query.clone() }).await.unwrap();
            if page.is_empty() {
                break;
            }
            after = page.last().map(position);
            seen.extend(ids(&page));
            assert!(seen.len() <= all.len(), "paging forwards does not end");
        }
        assert_eq!(seen, all_ids, "forwards");
        // Backwards from the end, three at a time (`last`/`before`).
        let mut seen: Vec<String> = Vec::new();
        let mut before = None;
        loop {
            let page = store
                .list(&ListQuery { before: before.clone(), limit: 3, from_end: true, ..query.clone() })
                .await
                .unwrap();
            if page.is_empty() {
                break;
            }
            before = page.first().map(position);
            let mut page_ids = ids(&page);
            page_ids.extend(seen);
            seen = page_ids;
            assert!(seen.len() <= all.len(), "paging backwards does not end");
        }
        assert_eq!(seen, all_ids, "backwards");
        // A window between two positions.
        if all.len() >= 5 {
            let window = store
                .list(&ListQuery {
                    after: Some(position(&all[0])),
                    before: Some(position(&all[4])),
                    limit: 10,
                    ..query.clone()
                })
                .await
                .unwrap();
            assert_eq!(ids(&window), all_ids[1..4]);
            let tail = store
                .list(&ListQuery {
                    after: Some(position(&all[0])),
                    before: Some(position(&all[4])),
                    limit: 2,
                    from_end: true,
                    ..query.clone()
                })
                .await
                .unwrap();
            assert_eq!(ids(&tail), all_ids[2..4]);
        }
    }

    pub async fn counts_match_sqlite(store: &Store) {
        load_fixed_seed(store).await;
        let (reference, _dir) = reference().await;
        for &kind in NodeKind::ALL {
            for filter in filters(kind) {
                let got = store.count(kind, &filter).await.unwrap();
                assert_eq!(got, reference.count(kind, &filter).await.unwrap(), "{kind:?} {filter:?}");
                let listed = store.list(&list(kind, filter.clone(), OrderField::Id, false)).await.unwrap();
                assert_eq!(got, listed.len() as u64);
            }
        }
        assert_eq!(store.count(NodeKind::Learning, &NodeFilter::default()).await.unwrap(), 15);
        let unaddressed =
            NodeFilter { related: vec![(RelationshipKind::Addresses, Direction::In, false)], ..NodeFilter::default() };
        let addressed =
            NodeFilter { related: vec![(RelationshipKind::Addresses, Direction::In, true)], ..NodeFilter::default() };
        assert_eq!(
            store.count(NodeKind::Barrier, &unaddressed).await.unwrap()
                + store.count(NodeKind::Barrier, &addressed).await.unwrap(),
            13
        );
    }

    pub async fn edges_both_directions(store: &Store) {
        load_fixed_seed(store).await;
        let (reference, _dir) = reference().await;
        assert!(store.edges(&[], Direction::Out).await.unwrap().is_empty());
        let all: Vec<NodeId> = reference.dump().await.unwrap().0.into_iter().map(|n| n.id).collect();
        for direction in [Direction::Out, Direction::In] {
            let got = store.edges(&all, direction).await.unwrap();
            assert_eq!(got.len(), 232);
            assert_eq!(sorted_edges(&got), sorted_edges(&reference.edges(&all, direction).await.unwrap()));
            for one in all.iter().step_by(7) {
                let got = store.edges(std::slice::from_ref(one), direction).await.unwrap();
                let want = reference.edges(std::slice::from_ref(one), direction).await.unwrap();
                assert_eq!(sorted_edges(&got), sorted_edges(&want), "{one} {direction:?}");
                for e in &got {
                    assert_eq!(if direction == Direction::Out { &e.from } else { &e.to }, one);
                }
            }
        }
        let principle = id("kc:principle:take-the-right-risks");
        let out = store.edges(std::slice::from_ref(&principle), Direction::Out).await.unwrap();
        assert!(out.iter().any(|e| e.kind == RelationshipKind::Upholds));
        let inn = store.edges(std::slice::from_ref(&principle), Direction::In).await.unwrap();
        let influence = inn.iter().find(|e| e.kind == RelationshipKind::Influenced).expect("an influence");
        assert!(influence.influence.is_some());
    }

    /// A node's relationships read with their far ends (`visible_edges_and_ends`), and a node
    /// read with its relationships (`visible_node_with_edges`), hold what the plain lookups do,
    /// for every audience: the relationships `visible_edges` gives, every far end whole as
    /// `nodes` reads it, and nothing of a node the audience may not see. The graph has hidden
    /// nodes of two organisations and relationships with a foreign end, both ways.
    pub async fn relationships_come_with_their_far_ends(store: &Store) {
        load_fixed_seed(store).await;
        store.apply(hidden_first()).await.map_err(|f| f.error).expect("the graph applies");
        with_foreign_edges(store).await;
        store
            .apply(vec![Change::Update { id: id("t:principle:p"), patch: patch(json!({"visibility": "PRIVATE"})) }])
            .await
            .map_err(|f| f.error)
            .unwrap();
        let all: Vec<NodeId> = store.dump().await.unwrap().0.into_iter().map(|n| n.id).collect();
        let whole = |nodes: &[Node]| -> BTreeSet<String> { nodes.iter().map(node_json).collect() };
        let far_ends = |edges: &[Edge], direction: Direction| -> Vec<NodeId> {
            let far = edges.iter().map(|e| if direction == Direction::Out { e.to.clone() } else { e.from.clone() });
            far.collect::<BTreeSet<_>>().into_iter().collect()
        };
        let (mut ends_read, mut hidden) = (0, 0);
        for audience in
            [Audience::Everything, Audience::Public, Audience::Member("a".into()), Audience::Member("t".into())]
        {
            for direction in [Direction::Out, Direction::In] {
                // All the nodes at once, then each alone.
                for ids in std::iter::once(all.clone()).chain(all.iter().map(|id| vec![id.clone()])) {
                    let (edges, ends) = store.visible_edges_and_ends(&ids, direction, &audience).await.unwrap();
                    let want = store.visible_edges(&ids, direction, &audience).await.unwrap();
                    assert_eq!(sorted_edges(&edges), sorted_edges(&want), "{audience:?} {direction:?} {ids:?}");
                    let want = store.nodes(&far_ends(&edges, direction)).await.unwrap();
                    assert_eq!(whole(&ends), whole(&want), "{audience:?} {direction:?} {ids:?}");
                    ends_read += ends.len();
                }
            }
            for one in &all {
                let seen =
                    store.nodes(std::slice::from_ref(one)).await.unwrap().into_iter().find(|n| audience.sees_node(n));
                hidden += usize::from(seen.is_none());
                for directions in [vec![Direction::Out, Direction::In], vec![Direction::In]] {
                    let read = store.visible_node_with_edges(one, &directions, &audience).await.unwrap();
                    let read = read.expect("every backend reads a node with its relationships");
                    assert_eq!(read.node.as_ref().map(node_json), seen.as_ref().map(node_json), "{audience:?} {one}");
                    let asked: Vec<Direction> = read.edges.iter().map(|(d, ..)| *d).collect();
                    assert_eq!(asked, directions, "the directions asked, in order");
                    for (direction, edges, ends) in &read.edges {
                        let want = match seen {
                            Some(_) => {
                                store.visible_edges(std::slice::from_ref(one), *direction, &audience).await.unwrap()
                            }
                            None => Vec::new(),
                        };
                        assert_eq!(sorted_edges(edges), sorted_edges(&want), "{audience:?} {one} {direction:?}");
                        let want = store.nodes(&far_ends(edges, *direction)).await.unwrap();
                        assert_eq!(whole(ends), whole(&want), "{audience:?} {one} {direction:?}");
                    }
                }
            }
        }
        assert!(ends_read > 0, "some far ends were read");
        assert!(hidden > 0, "some node was hidden from some audience");
        // A relationship with a foreign end is no audience's to see in this store.
        let held = store.edges(&[id("t:learning:l")], Direction::Out).await.unwrap();
        assert!(held.iter().any(|e| e.to.organisation() == "nw"), "{held:?}");
        for audience in [Audience::Everything, Audience::Member("t".into())] {
            let (edges, _) =
                store.visible_edges_and_ends(&[id("t:learning:l")], Direction::Out, &audience).await.unwrap();
            assert!(edges.iter().all(|e| e.to.organisation() == "t"), "{edges:?}");
        }
    }

    /// A tiny graph: one organisation, a principle, a value, a learning, a source.
    fn small_graph() -> Vec<Change> {
        vec![
            Change::Create(node(json!({"id": "t:organisation:t", "title": "Test org"}))),
            Change::Create(node(json!({"id": "t:value:v", "title": "Value", "definition": "good"}))),
            Change::Create(node(json!({"id": "t:principle:p", "title": "Principle", "statement": "do good"}))),
            Change::Create(node(json!({
                "id": "t:learning:l", "title": "Learning", "statement": "we learnt", "kind": "MINDSET",
                "capturedOn": "2024-03-01"
            }))),
            Change::Create(node(json!({"id": "t:source:s", "title": "Source", "url": "https://example.org/s"}))),
            Change::Link(edge(json!({"kind": "UPHOLDS", "from": "t:principle:p", "to": "t:value:v"}))),
        ]
    }

    fn influence(on: &str, assertion: &str, sources: &[&str]) -> Edge {
        edge(json!({
            "kind": "INFLUENCED", "from": "t:learning:l", "to": "t:principle:p", "how": "REVISED_PRINCIPLE",
            "systemCondition": "MENTAL_MODELS", "on": on, "strength": "MODERATE", "assertion": assertion,
            "sources": sources, "contribution": "it helped"
        }))
    }

    /// A caller admitted before the store confirmed them (`Actor::confirmation`) writes nothing
    /// unless the confirmation names them: through the store itself where it says it
    /// `confirms_callers`, and through a caller's view (`Visible`) on every store. Both kinds of
    /// change set are tried: creating and linking (which Neo4j reads before it locks) and an
    /// update (which takes the lock first).
    pub async fn writes_wait_for_the_callers_confirmation(store: &Store) {
        store.apply(small_graph()).await.map_err(|f| f.error).unwrap();
        let caller = Caller::Member(Member { organisation: "t".into(), role: Role::Editor, subject: "token:c".into() });
        let someone_else =
            Caller::Member(Member { organisation: "t".into(), role: Role::Viewer, subject: "token:c".into() });
        // No token of this hash is stored: a store that checks the token itself finds it
        // missing, and the answer given here decides.
        let answer = |outcome: Result<Caller, Error>| {
            let outcome = outcome.map_err(Arc::new);
            Some(Confirmation::new("no-such-token", async move { outcome }))
        };
        let create_and_link = vec![
            Change::Create(node(json!({"id": "t:value:w", "title": "Waiting", "definition": "later"}))),
            Change::Link(edge(json!({"kind": "UPHOLDS", "from": "t:principle:p", "to": "t:value:w"}))),
        ];
        let update = vec![Change::Update { id: id("t:principle:p"), patch: patch(json!({"title": "Changed"})) }];
        let before = store.dump().await.unwrap();
        for changes in [&create_and_link, &update] {
            for refusal in [Err(Error::Unauthenticated("the token was revoked".into())), Ok(someone_else.clone())] {
                let confirmation = answer(refusal);
                let view = store::Visible::new(store.clone(), caller.clone()).unconfirmed(confirmation.clone());
                let error = view.apply_as(changes.clone(), None).await.unwrap_err().error;
                assert!(matches!(error, Error::Unauthenticated(_)), "{error:?}");
                if store.confirms_callers() {
                    let actor =
                        Actor { caller: caller.clone(), operation: "test".into(), partners: Vec::new(), confirmation };
                    let error = store.apply_as(changes.clone(), Some(&actor)).await.unwrap_err().error;
                    assert!(matches!(error, Error::Unauthenticated(_)), "{error:?}");
                }
                assert_eq!(store.dump().await.unwrap(), before, "nothing was written");
            }
        }
        // Confirmed as themselves, they write.
        let view = store::Visible::new(store.clone(), caller.clone()).unconfirmed(answer(Ok(caller.clone())));
        view.apply_as(create_and_link, None).await.map_err(|f| f.error).unwrap();
        view.apply_as(update, None).await.map_err(|f| f.error).unwrap();
        let changed = store.nodes(&[id("t:principle:p"), id("t:value:w")]).await.unwrap();
        assert_eq!(changed.iter().map(|n| n.title.as_str()).collect::<Vec<_>>(), ["Changed", "Waiting"]);
    }

    pub async fn every_change_kind(store: &Store) {
        let applied = store.apply(small_graph()).await.map_err(|f| f.error).unwrap();
        assert_eq!(applied.len(), 6);
        assert!(matches!(&applied[0], Applied::Created(n) if n.id.as_str() == "t:organisation:t"));
        assert!(matches!(&applied[5], Applied::Linked(e) if e.kind == RelationshipKind::Upholds));

        // Link: an influence and a citation, with their properties.
        let cite = edge(
            json!({"kind": "CITES", "from": "t:principle:p", "to": "t:source:s", "quote": "q", "locator": "p. 1"}),
        );
        let applied = store
            .apply(vec![Change::Link(influence("2024-03-02", "SOURCED", &["t:source:s"])), Change::Link(cite.clone())])
            .await
            .map_err(|f| f.error)
            .unwrap();
        assert_eq!(applied.len(), 2);
        let inn = store.edges(&[id("t:principle:p")], Direction::In).await.unwrap();
        assert_eq!(sorted_edges(&inn), sorted_edges(&[influence("2024-03-02", "SOURCED", &["t:source:s"])]));
        let out = store.edges(&[id("t:principle:p")], Direction::Out).await.unwrap();
        assert_eq!(out.len(), 2);
        assert!(out.contains(&cite));

        // Update: a merge patch; null clears a field.
        let before = store.nodes(&[id("t:principle:p")]).await.unwrap().pop().unwrap();
        let applied = store
            .apply(vec![Change::Update {
                id: id("t:principle:p"),
                patch: patch(
                    json!({"title": "Principle, revised", "status": "REVISED", "rationale": "why", "tags": ["x", "y"]}),
                ),
            }])
            .await
            .map_err(|f| f.error)
            .unwrap();
        let Applied::Updated { before: was, after } = &applied[0] else { panic!("{applied:?}") };
        assert_eq!(was, &before);
        let now = store.nodes(&[id("t:principle:p")]).await.unwrap().pop().unwrap();
        assert_eq!(&now, after);
        assert_eq!(now.title, "Principle, revised");
        assert_eq!(now.tags, ["x", "y"]);
        assert!(now.updated_at >= before.updated_at);
        let filter =
            NodeFilter { fields: vec![FieldTest::OneOf("status", vec!["REVISED".into()])], ..NodeFilter::default() };
        assert_eq!(store.count(NodeKind::Principle, &filter).await.unwrap(), 1);
        store
            .apply(vec![Change::Update {
                id: id("t:principle:p"),
                patch: patch(json!({"rationale": null, "tags": null})),
            }])
            .await
            .map_err(|f| f.error)
            .unwrap();
        let cleared = store.nodes(&[id("t:principle:p")]).await.unwrap().pop().unwrap();
        assert!(cleared.tags.is_empty());
        assert!(!node_json(&cleared).contains("rationale"));

        // Unlink returns the relationship as it was.
        let applied = store
            .apply(vec![Change::Unlink {
                from: id("t:principle:p"),
                kind: RelationshipKind::Cites,
                to: id("t:source:s"),
            }])
            .await
            .map_err(|f| f.error)
            .unwrap();
        assert!(matches!(&applied[0], Applied::Unlinked(e) if *e == cite));
        assert_eq!(store.edges(&[id("t:principle:p")], Direction::Out).await.unwrap().len(), 1);

        // Delete takes the node's relationships with it and returns them.
        let applied = store.apply(vec![Change::Delete(id("t:principle:p"))]).await.map_err(|f| f.error).unwrap();
        let Applied::Deleted { node: gone, edges } = &applied[0] else { panic!("{applied:?}") };
        assert_eq!(gone.id.as_str(), "t:principle:p");
        assert_eq!(edges.len(), 2, "{edges:?}");
        assert!(store.nodes(&[id("t:principle:p")]).await.unwrap().is_empty());
        assert!(store.edges(&[id("t:value:v")], Direction::In).await.unwrap().is_empty());
        assert!(store.edges(&[id("t:learning:l")], Direction::Out).await.unwrap().is_empty());
        // Now nothing cites the source: it may go.
        store.apply(vec![Change::Delete(id("t:source:s"))]).await.map_err(|f| f.error).unwrap();

        // Several changes in one set see each other's work.
        let applied = store
            .apply(vec![
                Change::Create(node(json!({"id": "t:principle:q", "title": "Q", "statement": "q"}))),
                Change::Link(edge(json!({"kind": "UPHOLDS", "from": "t:principle:q", "to": "t:value:v"}))),
                Change::Update { id: id("t:principle:q"), patch: patch(json!({"title": "Q2"})) },
                Change::Unlink { from: id("t:principle:q"), kind: RelationshipKind::Upholds, to: id("t:value:v") },
                Change::Delete(id("t:principle:q")),
                Change::Create(node(json!({"id": "t:principle:q", "title": "Q again", "statement": "q"}))),
            ])
            .await
            .map_err(|f| f.error)
            .unwrap();
        assert_eq!(applied.len(), 6);
        let Applied::Deleted { edges, .. } = &applied[4] else { panic!() };
        assert!(edges.is_empty());
        assert_eq!(store.nodes(&[id("t:principle:q")]).await.unwrap()[0].title, "Q again");
    }

    /// Applies `changes` (a valid create first, then the bad change) and checks
    /// that the set is refused at `index` and that the graph did not change.
    async fn refused(store: &Store, bad: Change, check: impl Fn(&Error) -> bool) {
        let before = store.dump().await.unwrap();
        let changes = vec![Change::Create(node(json!({"id": "t:value:extra", "title": "Extra"}))), bad];
        let (index, error) = expect_err(store.apply(changes).await);
        assert_eq!(index, 1, "{error:?}");
        assert!(check(&error), "unexpected error {error:?} ({})", error.code());
        let after = store.dump().await.unwrap();
        assert_eq!(sorted_nodes(&after.0), sorted_nodes(&before.0), "a refused change set left nodes behind");
        assert_eq!(sorted_edges(&after.1), sorted_edges(&before.1), "a refused change set left relationships behind");
    }

    pub async fn refusals_leave_nothing_behind(store: &Store) {
        store.apply(small_graph()).await.map_err(|f| f.error).unwrap();
        store
            .apply(vec![Change::Link(influence("2024-03-05", "SOURCED", &["t:source:s"]))])
            .await
            .map_err(|f| f.error)
            .unwrap();
        let conflict = |e: &Error| matches!(e, Error::Conflict(_));
        let not_found = |e: &Error| matches!(e, Error::NotFound(_));

        // A node whose id is taken.
        refused(store, Change::Create(node(json!({"id": "t:value:v", "title": "Again"}))), conflict).await;
        // A node of an organisation that does not exist.
        refused(store, Change::Create(node(json!({"id": "nobody:value:v", "title": "Orphan"}))), |e| {
            reason(e) == Some("UNKNOWN_ORGANISATION")
        })
        .await;
        // Updates, deletes, links and unlinks of what is not there.
        refused(store, Change::Update { id: id("t:value:missing"), patch: patch(json!({"title": "x"})) }, not_found)
            .await;
        refused(store, Change::Delete(id("t:value:missing")), not_found).await;
        refused(
            store,
            Change::Link(edge(json!({"kind": "UPHOLDS", "from": "t:principle:p", "to": "t:value:missing"}))),
            not_found,
        )
        .await;
        refused(
            store,
            Change::Link(edge(json!({"kind": "UPHOLDS", "from": "t:principle:missing", "to": "t:value:v"}))),
            not_found,
        )
        .await;
        refused(
            store,
            Change::Unlink { from: id("t:principle:p"), kind: RelationshipKind::Hinders, to: id("t:value:v") },
            not_found,
        )
        .await;
        // A relationship that exists already.
        refused(
            store,
            Change::Link(edge(json!({"kind": "UPHOLDS", "from": "t:principle:p", "to": "t:value:v"}))),
            conflict,
        )
        .await;
        // An influence dated before its learning existed (captured 2024-03-01).
        refused(
            store,
            Change::Link(edge(json!({
                "kind": "INFLUENCED", "from": "t:learning:l", "to": "t:value:v", "how": "SHIFTED_MINDSET",
                "systemCondition": "MENTAL_MODELS", "on": "2024-02-29", "assertion": "INFERRED"
            }))),
            |e| reason(e) == Some("INFLUENCE_BEFORE_LEARNING"),
        )
        .await;
        // A learning moved to after an influence it already has (2024-03-05).
        refused(
            store,
            Change::Update { id: id("t:learning:l"), patch: patch(json!({"capturedOn": "2024-03-06"})) },
            |e| reason(e) == Some("INFLUENCE_BEFORE_LEARNING"),
        )
        .await;
        // A SOURCED influence without sources is refused before it reaches a store…
        let record = json!({
            "kind": "INFLUENCED", "from": "t:learning:l", "to": "t:value:v", "how": "SHIFTED_MINDSET",
            "systemCondition": "MENTAL_MODELS", "on": "2024-03-02", "assertion": "SOURCED"
        });
        let error = EdgeRecord::from_json(record).and_then(EdgeRecord::into_edge).expect_err("refused");
        assert_eq!(reason(&error), Some("SOURCED_WITHOUT_SOURCE"));
        // …and one naming a source that does not exist is refused by the store.
        refused(
            store,
            Change::Link(edge(json!({
                "kind": "INFLUENCED", "from": "t:learning:l", "to": "t:value:v", "how": "SHIFTED_MINDSET",
                "systemCondition": "MENTAL_MODELS", "on": "2024-03-02", "assertion": "SOURCED",
                "sources": ["t:source:missing"]
            }))),
            |e| reason(e) == Some("UNKNOWN_NODE"),
        )
        .await;
        // A source that backs an influence cannot be deleted; nor can an organisation.
        refused(store, Change::Delete(id("t:source:s")), conflict).await;
        refused(store, Change::Delete(id("t:organisation:t")), conflict).await;
        // A failure in the middle of a long set undoes the changes before it too.
        let before = store.dump().await.unwrap();
        let mut changes: Vec<Change> = (0..20)
            .map(|i| Change::Create(node(json!({"id": format!("t:value:v{i}"), "title": format!("V{i}")}))))
            .collect();
        changes.push(Change::Update { id: id("t:value:v3"), patch: patch(json!({"title": "changed"})) });
        changes.push(Change::Delete(id("t:value:missing")));
        let (index, _) = expect_err(store.apply(changes).await);
        assert_eq!(index, 21);
        assert_eq!(sorted_nodes(&store.dump().await.unwrap().0), sorted_nodes(&before.0));
        // The store still works after all those rollbacks.
        store
            .apply(vec![Change::Create(node(json!({"id": "t:value:after", "title": "After"})))])
            .await
            .map_err(|f| f.error)
            .unwrap();
    }

    fn trace_requests() -> Vec<TraceRequest> {
        let request = |from: &str, direction, max_depth| TraceRequest {
            from: id(from),
            direction,
            max_depth,
            via: vec![],
            kinds: vec![],
            as_of: None,
            audience: Default::default(),
            max_nodes: pvgraph::store::traverse::MAX_TRACE_NODES,
        };
        let mut all = Vec::new();
        for from in [
            "kc:learning:right-risk-review-makes-risk-discussable",
            "kc:principle:relaunched-true-north-and-values-2023",
            "kc:value:equity",
            "kc:experiment:reimagining-public-value-programme",
            "cpi:learning:build-trust-before-co-creating",
        ] {
            for direction in [TraceDirection::Downstream, TraceDirection::Upstream, TraceDirection::Both] {
                for depth in [1, 2, 10] {
                    all.push(request(from, direction, depth));
                }
            }
        }
        let mut via = request("kc:principle:take-the-right-risks", TraceDirection::Upstream, 6);
        via.via = vec![RelationshipKind::Influenced, RelationshipKind::Produced];
        all.push(via);
        let mut kinds = request("kc:principle:relaunched-true-north-and-values-2023", TraceDirection::Upstream, 5);
        kinds.kinds = vec![NodeKind::Learning, NodeKind::Experiment];
        all.push(kinds);
        let mut as_of = request("kc:principle:take-the-right-risks", TraceDirection::Both, 5);
        as_of.as_of = NaiveDate::from_ymd_opt(2022, 9, 1);
        all.push(as_of);
        let mut everything = request("kc:learning:embrace-uncertainty-and-failure", TraceDirection::Both, 4);
        everything.via = vec![RelationshipKind::Influenced, RelationshipKind::Cites, RelationshipKind::Upholds];
        everything.kinds = vec![NodeKind::Principle, NodeKind::Source];
        everything.as_of = NaiveDate::from_ymd_opt(2023, 6, 1);
        all.push(everything);
        all
    }

    pub async fn traces_match_sqlite(store: &Store) {
        load_fixed_seed(store).await;
        let (reference, _dir) = reference().await;
        let mut depth_capped = 0;
        for request in trace_requests() {
            let got = store.trace(&request).await.unwrap();
            let want = reference.trace(&request).await.unwrap();
            let nodes = |t: &pvgraph::store::Trace| {
                t.nodes.iter().map(|(n, d)| (n.id.to_string(), *d)).collect::<BTreeSet<_>>()
            };
            let parents = |t: &pvgraph::store::Trace| {
                t.parents.iter().map(|(k, e)| (k.to_string(), edge_json(e))).collect::<BTreeMap<_, _>>()
            };
            assert_eq!(nodes(&got), nodes(&want), "nodes of {request:?}");
            assert_eq!(got.nodes[0].0.id, request.from, "the start comes first");
            assert_eq!(sorted_edges(&got.edges), sorted_edges(&want.edges), "edges of {request:?}");
            assert_eq!(parents(&got), parents(&want), "parents of {request:?}");
            assert_eq!(got.truncated, want.truncated, "truncation of {request:?}");
            if got.truncated.iter().any(|t| t.contains("maxDepth")) {
                depth_capped += 1;
            }
            if !request.kinds.is_empty() {
                // How `kinds` narrows the answer is the traversal's business; here it must find some.
                assert!(got.nodes.iter().skip(1).any(|(n, _)| request.kinds.contains(&n.kind())), "{request:?}");
            }
            if let Some(day) = request.as_of {
                assert!(got.nodes.iter().all(|(n, _)| n.existed_since() <= day));
                assert!(got.edges.iter().all(|e| e.influence.as_ref().is_none_or(|i| i.on <= day)));
            }
        }
        assert!(depth_capped > 0, "no request reached the depth cap");
        // A depth-1 trace from a busy node says that more lies beyond.
        let request = TraceRequest {
            from: id("kc:learning:right-risk-review-makes-risk-discussable"),
            direction: TraceDirection::Both,
            max_depth: 1,
            via: vec![],
            kinds: vec![],
            as_of: None,
            audience: Default::default(),
            max_nodes: pvgraph::store::traverse::MAX_TRACE_NODES,
        };
        let trace = store.trace(&request).await.unwrap();
        assert_eq!(trace.truncated, ["maxDepth 1 was reached; more lies beyond"]);
        // A missing start is not found.
        let missing = TraceRequest { from: id("kc:value:missing"), ..request };
        assert!(matches!(store.trace(&missing).await, Err(Error::NotFound(_))));
    }

    /// A graph whose first nodes at each level are hidden from the callers below: `b:value:hub`,
    /// upheld first by three of `a`'s PRIVATE principles recorded in 2024, then by four PUBLIC
    /// principles of `b` from 2020; the first of those is hindered by such a hidden barrier of `a`
    /// and then by a PUBLIC barrier of `b`.
    fn hidden_first() -> Vec<Change> {
        let late =
            |id: &str| json!({"id": id, "title": id, "visibility": "PRIVATE", "createdAt": "2024-06-01T00:00:00Z"});
        let early = |id: &str| json!({"id": id, "title": id, "createdAt": "2020-01-01T00:00:00Z"});
        let mut records = vec![early("a:organisation:a"), early("b:organisation:b"), early("b:value:hub")];
        let mut links = Vec::new();
        let principles = ["a:principle:h0", "a:principle:h1", "a:principle:h2"].map(late).into_iter();
        for mut principle in
            principles.chain(["b:principle:s0", "b:principle:s1", "b:principle:s2", "b:principle:s3"].map(early))
        {
            principle["statement"] = principle["title"].clone();
            links.push(json!({"kind": "UPHOLDS", "from": principle["id"], "to": "b:value:hub"}));
            records.push(principle);
        }
        for mut barrier in [late("a:barrier:x0"), early("b:barrier:y0")] {
            barrier["kind"] = json!("CULTURAL");
            links.push(json!({"kind": "HINDERS", "from": barrier["id"], "to": "b:principle:s0"}));
            records.push(barrier);
        }
        let mut changes: Vec<Change> = records.into_iter().map(|r| Change::Create(node(r))).collect();
        changes.extend(links.into_iter().map(|l| Change::Link(edge(l))));
        changes
    }

    /// The node cap counts the nodes a trace shows: nodes its caller may not see, or that did
    /// not exist yet on `asOf`, neither take room nor end the trace early.
    pub async fn trace_cap_counts_the_nodes_shown(store: &Store) {
        store.apply(hidden_first()).await.map_err(|f| f.error).expect("the graph applies");
        let hiders = [
            (Audience::Member("b".into()), None),
            (Audience::Public, None),
            (Audience::Everything, NaiveDate::from_ymd_opt(2022, 1, 1)),
        ];
        for (audience, as_of) in hiders {
            let request = |max_nodes: usize| TraceRequest {
                from: id("b:value:hub"),
                direction: TraceDirection::Upstream,
                max_depth: 3,
                via: vec![],
                kinds: vec![],
                as_of,
                audience: audience.clone(),
                max_nodes,
            };
            let shown = |trace: &pvgraph::store::Trace| {
                trace.nodes.iter().map(|(n, d)| format!("{} {d}", n.id)).collect::<Vec<_>>()
            };
            let principles = ["b:value:hub 0", "b:principle:s0 1", "b:principle:s1 1", "b:principle:s2 1"];
            let all = [&principles[..], &["b:principle:s3 1", "b:barrier:y0 2"]].concat();
            let asked = format!("{audience:?} {as_of:?}");
            // Room for three: the first three visible, and more were left out.
            let trace = store.trace(&request(3)).await.unwrap();
            assert_eq!(shown(&trace), principles[..3], "{asked}");
            assert_eq!(trace.truncated, ["the trace stopped at 3 nodes (--max-trace-nodes)"], "{asked}");
            // Room for the whole first level, and the second holds a visible barrier beyond it.
            let trace = store.trace(&request(5)).await.unwrap();
            assert_eq!(shown(&trace), all[..5], "{asked}");
            assert_eq!(trace.truncated, ["the trace stopped at 5 nodes (--max-trace-nodes)"], "{asked}");
            // Room for every visible node: the whole trace, not truncated.
            for max_nodes in [6, 7, 100] {
                let trace = store.trace(&request(max_nodes)).await.unwrap();
                assert_eq!(shown(&trace), all, "{asked} {max_nodes}");
                assert!(trace.truncated.is_empty(), "{asked} {max_nodes}: {:?}", trace.truncated);
                assert_eq!(trace.edges.len(), 5, "{asked} {max_nodes}: {:?}", trace.edges);
            }
            // Without the barrier of `b`, a full first level leaves only hidden nodes beyond it.
            let barrier = (id("b:barrier:y0"), RelationshipKind::Hinders, id("b:principle:s0"));
            store
                .apply(vec![Change::Unlink { from: barrier.0.clone(), kind: barrier.1, to: barrier.2.clone() }])
                .await
                .map_err(|f| f.error)
                .unwrap();
            let trace = store.trace(&request(5)).await.unwrap();
            assert_eq!(shown(&trace), all[..5], "{asked}");
            assert!(trace.truncated.is_empty(), "{asked}: {:?}", trace.truncated);
            store
                .apply(vec![Change::Link(edge(
                    json!({"kind": "HINDERS", "from": "b:barrier:y0", "to": "b:principle:s0"}),
                ))])
                .await
                .map_err(|f| f.error)
                .unwrap();
            // The walk passes over at most as many hidden nodes as it may show; past them it
            // cannot rule out that a visible node was left out, and says why it stopped.
            let trace = store.trace(&request(2)).await.unwrap();
            assert_eq!(shown(&trace), principles[..1], "{asked}");
            assert_eq!(
                trace.truncated,
                ["the trace stopped after passing over 2 nodes it may not show (--max-trace-nodes)"],
                "{asked}"
            );
        }
        // Through the store a server hands an anonymous caller, the same answer.
        let anonymous: Store = std::sync::Arc::new(store::Visible::new(store.clone(), Caller::Anonymous));
        let request = TraceRequest {
            from: id("b:value:hub"),
            direction: TraceDirection::Upstream,
            max_depth: 3,
            via: vec![],
            kinds: vec![],
            as_of: None,
            audience: Audience::Everything,
            max_nodes: 3,
        };
        let trace = anonymous.trace(&request).await.unwrap();
        let ids: Vec<&str> = trace.nodes.iter().map(|(n, _)| n.id.as_str()).collect();
        assert_eq!(ids, ["b:value:hub", "b:principle:s0", "b:principle:s1"]);
        assert_eq!(trace.truncated.len(), 1, "{:?}", trace.truncated);
        // The server itself sees every node: the hidden principles come first, in id order.
        let trace = store.trace(&TraceRequest { max_nodes: 4, ..request }).await.unwrap();
        let ids: Vec<&str> = trace.nodes.iter().map(|(n, _)| n.id.as_str()).collect();
        assert_eq!(ids, ["b:value:hub", "a:principle:h0", "a:principle:h1", "a:principle:h2"]);
    }

    pub async fn paths_match_sqlite(store: &Store) {
        load_fixed_seed(store).await;
        let (reference, _dir) = reference().await;
        let pairs = [
            (
                "kc:experiment:rescope-public-health-intern-duties",
                "kc:principle:take-the-right-risks",
                TraceDirection::Downstream,
            ),
            (
                "kc:learning:small-safe-failures-build-tolerance",
                "kc:principle:relaunched-true-north-and-values-2023",
                TraceDirection::Downstream,
            ),
            (
                "kc:principle:relaunched-true-north-and-values-2023",
                "kc:experiment:open-door-conversations",
                TraceDirection::Upstream,
            ),
            ("kc:value:equity", "cpi:learning:innovation-is-a-mindset", TraceDirection::Both),
            ("kc:value:equity", "kc:value:trust", TraceDirection::Downstream),
        ];
        let mut found = 0;
        for (from, to, direction) in pairs {
            for (max_depth, via) in
                [(4, vec![]), (6, vec![]), (6, vec![RelationshipKind::Influenced, RelationshipKind::Produced])]
            {
                let request = PathRequest {
                    from: id(from),
                    to: id(to),
                    direction,
                    max_depth,
                    via,
                    first: 1000,
                    audience: Default::default(),
                };
                let got = store.paths(&request).await.unwrap();
                let want = reference.paths(&request).await.unwrap();
                let paths = |p: &pvgraph::store::Paths| {
                    let mut all: Vec<(Vec<String>, Vec<String>)> = p
                        .paths
                        .iter()
                        .map(|(nodes, edges)| {
                            (nodes.iter().map(ToString::to_string).collect(), edges.iter().map(edge_json).collect())
                        })
                        .collect();
                    all.sort();
                    all
                };
                assert_eq!(paths(&got), paths(&want), "{request:?}");
                let lengths: Vec<usize> = got.paths.iter().map(|(_, e)| e.len()).collect();
                assert!(lengths.windows(2).all(|w| w[0] <= w[1]), "shortest first: {lengths:?}");
                assert_eq!(sorted_nodes(&got.nodes), sorted_nodes(&want.nodes));
                assert_eq!(got.truncated, want.truncated);
                found += got.paths.len();
            }
        }
        assert!(found > 0, "no path was found at all");
        let request = PathRequest {
            from: id("kc:value:missing"),
            to: id("kc:value:equity"),
            direction: TraceDirection::Both,
            max_depth: 3,
            via: vec![],
            first: 10,
            audience: Default::default(),
        };
        assert!(matches!(store.paths(&request).await, Err(Error::NotFound(_))));
    }

    pub async fn search_ranks_the_obvious_hit_first(store: &Store) {
        load_fixed_seed(store).await;
        let search = |text: &str, kinds: Vec<NodeKind>| SearchRequest {
            text: text.into(),
            kinds,
            first: 10,
            audience: Default::default(),
        };
        let hits = store.search(&search("taboo", vec![])).await.unwrap();
        assert!(hits.len() > 1);
        assert_eq!(
            hits[0].node.id.as_str(),
            "kc:barrier:taboo-on-front-line-staff-visiting-management",
            "{:?}",
            ids_of(&hits)
        );
        assert!(hits.windows(2).all(|w| w[0].score >= w[1].score), "best first");
        assert!(hits.iter().all(|h| h.snippet.to_lowercase().contains("[taboo")), "{:?}", snippets(&hits));
        // A prefix of the last word.
        let hits = store.search(&search("silo", vec![])).await.unwrap();
        assert_eq!(hits.first().map(|h| h.node.id.as_str()), Some("kc:barrier:departmental-silos"));
        // Two words, both required; a kind filter.
        let hits = store.search(&search("reflection time", vec![NodeKind::Experiment])).await.unwrap();
        assert!(!hits.is_empty());
        assert!(hits.iter().all(|h| h.node.kind() == NodeKind::Experiment));
        assert!(
            hits.iter().any(|h| h.node.id.as_str() == "kc:experiment:protected-reflection-time"),
            "{:?}",
            ids_of(&hits)
        );
        // `first` limits the hits.
        let hits = store.search(&SearchRequest { first: 2, ..search("equity", vec![]) }).await.unwrap();
        assert_eq!(hits.len(), 2);
        // Nothing to search for is a bad input; operators are only words.
        assert!(matches!(store.search(&search("  ?! ", vec![])).await, Err(Error::Invalid { .. })));
        for text in
            ["title:* OR \"", "a\\ ( ) [ ] { } ~ ^ b: ! && ||", "risk AND NOT trust", "`MATCH (n) DETACH DELETE n`"]
        {
            store.search(&search(text, vec![])).await.unwrap_or_else(|e| panic!("{text}: {e:?}"));
        }
        let taboo: BTreeSet<NodeId> =
            store.search(&search("taboo", vec![])).await.unwrap().into_iter().map(|h| h.node.id).collect();
        let hits = store.search(&search("TAboo) OR (title:*", vec![])).await.unwrap();
        assert!(hits.iter().all(|h| taboo.contains(&h.node.id)), "every word is required: {:?}", ids_of(&hits));
        assert_eq!(store.count(NodeKind::Learning, &NodeFilter::default()).await.unwrap(), 15);
        assert!(store.search(&search("zzzqqqxxx", vec![])).await.unwrap().is_empty());
    }

    fn snippets(hits: &[pvgraph::store::SearchHit]) -> Vec<&str> {
        hits.iter().map(|h| h.snippet.as_str()).collect()
    }

    fn ids_of(hits: &[pvgraph::store::SearchHit]) -> Vec<String> {
        hits.iter().map(|h| format!("{} {:.3}", h.node.id, h.score)).collect()
    }

    pub async fn analysts_queries_match_sqlite(store: &Store) {
        load_fixed_seed(store).await;
        let (reference, _dir) = reference().await;
        for (from, to, limit) in [
            (None, None, 100),
            (Some("kc"), None, 100),
            (None, Some("kc"), 100),
            (Some("kc"), Some("cpi"), 2),
            (Some("x"), None, 5),
        ] {
            let got = store.influences_across(from, to, limit).await.unwrap();
            let want = reference.influences_across(from, to, limit).await.unwrap();
            let json = |edges: &[Edge]| edges.iter().map(edge_json).collect::<Vec<_>>();
            assert_eq!(json(&got), json(&want), "{from:?} {to:?} {limit}");
        }
        assert!(!store.influences_across(None, None, 100).await.unwrap().is_empty());
        for organisation in [None, Some("kc"), Some("cpi")] {
            let got = store.embedding_pairs(organisation).await.unwrap();
            let want = reference.embedding_pairs(organisation).await.unwrap();
            let json =
                |pairs: &[(Node, Node)]| pairs.iter().map(|(e, l)| (node_json(e), node_json(l))).collect::<Vec<_>>();
            assert_eq!(json(&got), json(&want), "{organisation:?}");
        }
        assert!(!store.embedding_pairs(Some("kc")).await.unwrap().is_empty());
    }

    pub async fn awkward_strings_round_trip(store: &Store) {
        let awkward = [
            "It's \"quoted\" and 'single'",
            "back\\slash \\\\ and \\n not a newline",
            "`backticks` and ``double``",
            "MATCH (n) DETACH DELETE n; RETURN 1 // CREATE INDEX",
            "$param {props} [list] ${x} :Label -[:REL]->",
            "emoji 🦀🧪✨ and ZWJ 👩‍🔬, combining é, RTL שלום, CJK 漢字",
            "line one\nline two\ttabbed\r\nwindows",
            "NULL null true false 0x00 %s %d {{}} \u{2028}",
        ];
        let mut changes = vec![Change::Create(node(json!({"id": "aw:organisation:aw", "title": "Awkward \"org\""})))];
        for (i, text) in awkward.iter().enumerate() {
            changes.push(Change::Create(node(json!({
                "id": format!("aw:principle:p{i}"), "title": text, "description": text, "tags": [text, "plain"],
                "statement": text, "rationale": text
            }))));
        }
        changes.push(Change::Create(node(json!({
            "id": "aw:source:s", "title": "Source", "url": "https://example.org/a?b=\"c\"&d='e'", "quote": awkward[3]
        }))));
        changes.push(Change::Link(edge(json!({
            "kind": "CITES", "from": "aw:principle:p0", "to": "aw:source:s", "quote": awkward[5], "locator": awkward[1]
        }))));
        let created: Vec<Node> = changes
            .iter()
            .filter_map(|c| match c {
                Change::Create(n) => Some(n.clone()),
                _ => None,
            })
            .collect();
        store.apply(changes).await.map_err(|f| f.error).unwrap();
        let read = store.nodes(&created.iter().map(|n| n.id.clone()).collect::<Vec<_>>()).await.unwrap();
        assert_eq!(sorted_nodes(&read), sorted_nodes(&created));
        let edges = store.edges(&[id("aw:principle:p0")], Direction::Out).await.unwrap();
        assert_eq!(edges.len(), 1);
        let citation = edges[0].citation.as_ref().unwrap();
        assert_eq!(citation.quote.as_deref(), Some(awkward[5]));
        assert_eq!(citation.locator.as_deref(), Some(awkward[1]));
        // Filters and searches with awkward text.
        for (i, text) in awkward.iter().enumerate() {
            let filter = NodeFilter {
                title_contains: Some(text.trim().to_uppercase()),
                tags: vec![text.to_string()],
                organisations: vec!["aw".into()],
                ..NodeFilter::default()
            };
            let found = store.list(&list(NodeKind::Principle, filter, OrderField::Title, false)).await.unwrap();
            assert_eq!(ids(&found), [format!("aw:principle:p{i}")], "{text}");
        }
        let hits = store
            .search(&SearchRequest {
                text: "🦀 漢字 ZWJ".into(),
                kinds: vec![],
                first: 5,
                audience: Default::default(),
            })
            .await
            .unwrap();
        assert_eq!(hits.first().map(|h| h.node.id.as_str()), Some("aw:principle:p5"));
        // Keyset positions with awkward keys.
        let all =
            store.list(&list(NodeKind::Principle, NodeFilter::default(), OrderField::Title, false)).await.unwrap();
        let middle = &all[3];
        let after = store
            .list(&ListQuery {
                after: Some(Position { key: middle.title.clone(), id: middle.id.to_string() }),
                ..list(NodeKind::Principle, NodeFilter::default(), OrderField::Title, false)
            })
            .await
            .unwrap();
        assert_eq!(ids(&after), ids(&all[4..]));
        // Patches with awkward text.
        store
            .apply(vec![Change::Update {
                id: id("aw:principle:p1"),
                patch: patch(json!({"title": awkward[4], "tags": awkward})),
            }])
            .await
            .map_err(|f| f.error)
            .unwrap();
        let p1 = store.nodes(&[id("aw:principle:p1")]).await.unwrap().pop().unwrap();
        assert_eq!(p1.title, awkward[4]);
        assert_eq!(p1.tags, awkward);
    }

    pub async fn concurrent_change_sets_are_serialised(store: &Store) {
        store.apply(small_graph()).await.map_err(|f| f.error).unwrap();
        // Eight writers race to create the same node and to make the same link.
        let attempts = (0..8).map(|i| {
            store.apply(vec![
                Change::Create(node(json!({"id": "t:value:raced", "title": format!("Raced {i}")}))),
                Change::Link(edge(json!({"kind": "UPHOLDS", "from": "t:principle:p", "to": "t:value:raced"}))),
            ])
        });
        let outcomes = futures::future::join_all(attempts).await;
        let won = outcomes.iter().filter(|o| o.is_ok()).count();
        assert_eq!(won, 1, "{outcomes:?}");
        for outcome in outcomes.into_iter().filter_map(Result::err) {
            assert!(matches!(outcome.error, Error::Conflict(_)), "{outcome:?}");
        }
        let raced = id("t:value:raced");
        assert_eq!(store.nodes(std::slice::from_ref(&raced)).await.unwrap().len(), 1);
        assert_eq!(store.edges(std::slice::from_ref(&raced), Direction::In).await.unwrap().len(), 1);
        // Eight writers race to record the same influence between nodes that exist: no
        // uniqueness rule of the database stops a second one, only change sets taking turns.
        let attempts = (0..8).map(|_| store.apply(vec![Change::Link(influence("2024-03-05", "INFERRED", &[]))]));
        let outcomes = futures::future::join_all(attempts).await;
        assert_eq!(outcomes.iter().filter(|o| o.is_ok()).count(), 1, "{outcomes:?}");
        for outcome in outcomes.into_iter().filter_map(Result::err) {
            assert!(matches!(outcome.error, Error::Conflict(_)), "{outcome:?}");
        }
        let learning = id("t:learning:l");
        assert_eq!(store.edges(std::slice::from_ref(&learning), Direction::Out).await.unwrap().len(), 1);
        // Writers of different nodes all get through.
        let attempts = (0..8).map(|i| {
            store.apply(vec![Change::Create(node(json!({"id": format!("t:value:each-{i}"), "title": "Each"})))])
        });
        assert!(futures::future::join_all(attempts).await.iter().all(Result::is_ok));
        assert_eq!(store.count(NodeKind::Value, &NodeFilter::default()).await.unwrap(), 10);
    }

    pub async fn copy_round_trip_loses_nothing(store: &Store) {
        let dir = tempfile::tempdir().unwrap();
        let origin = sqlite_store(&dir, "origin.db").await;
        load_fixed_seed(&origin).await;
        // Something awkward too, and an update so that updatedAt differs from createdAt, made by a
        // member: an entry of the audit trail.
        let editor = Actor {
            caller: Caller::Member(Member { organisation: "kc".into(), role: Role::Editor, subject: "token:a".into() }),
            operation: "awkward".into(),
            partners: Vec::new(),
            confirmation: None,
        };
        origin
            .apply_as(
                vec![
                    Change::Create(node(
                        json!({"id": "kc:value:awkward", "title": "Awk \"ward\" `x` 🦀", "tags": ["a\\b"]}),
                    )),
                    Change::Update {
                        id: id("kc:principle:take-the-right-risks"),
                        patch: patch(json!({"rationale": "it's \"fine\""})),
                    },
                ],
                Some(&editor),
            )
            .await
            .map_err(|f| f.error)
            .unwrap();
        // Tokens, one revoked, and a trail longer than the copy's page of another organisation.
        let token = |id: &str, revoked: Option<DateTime<Utc>>| ApiToken {
            id: id.into(),
            hash: format!("hash-of-{id}"),
            organisation: "kc".into(),
            role: Role::Admin,
            created_at: fixed_now(),
            revoked_at: revoked,
        };
        let tokens = [token("a", None), token("b", Some(fixed_now() + chrono::Duration::days(1)))];
        let trail: Vec<AuditEntry> = (0..1_001)
            .map(|i| AuditEntry {
                id: format!("entry-{i:04}"),
                at: fixed_now() - chrono::Duration::minutes(i),
                organisation: "acme".into(),
                role: Role::Editor,
                subject: "jwt:someone".into(),
                operation: "createValue".into(),
                changes: json!([{ "created": { "id": format!("acme:value:{i}") } }]),
            })
            .collect();
        origin.restore_access(&tokens, &trail).await.unwrap();
        let started = Instant::now();
        let copied = pvgraph::cli::copy(&origin, store).await.expect("the copy into the store works");
        eprintln!("{}: copied {copied:?} in {:?}", store.backend(), started.elapsed());
        assert_eq!((copied.nodes, copied.relationships, copied.tokens, copied.audit_entries), (75, 232, 2, 1_002));
        let back = sqlite_store(&dir, "back.db").await;
        pvgraph::cli::copy(store, &back).await.expect("the copy back works");
        let (want_nodes, want_edges) = origin.dump().await.unwrap();
        for dump in [store.dump().await.unwrap(), back.dump().await.unwrap()] {
            assert_eq!(sorted_nodes(&dump.0), sorted_nodes(&want_nodes));
            assert_eq!(sorted_edges(&dump.1), sorted_edges(&want_edges));
        }
        let whole = |organisation: &str| AuditQuery { organisation: organisation.into(), after: None, limit: 5_000 };
        for copy in [store, &back] {
            assert_eq!(copy.tokens().await.unwrap(), origin.tokens().await.unwrap());
            assert_eq!(copy.audit_organisations().await.unwrap(), ["acme", "kc"]);
            for organisation in ["acme", "kc"] {
                assert_eq!(
                    copy.audit_log(&whole(organisation)).await.unwrap(),
                    origin.audit_log(&whole(organisation)).await.unwrap()
                );
            }
        }
        // Access written again over itself (a copy run again) leaves one of each.
        store.restore_access(&tokens, &trail[..10]).await.unwrap();
        assert_eq!(store.tokens().await.unwrap().len(), 2);
        assert_eq!(store.audit_count("acme").await.unwrap(), 1_001);
        // A store that holds nodes is refused as a target, and left as it was.
        let error = pvgraph::cli::copy(&origin, store).await.expect_err("a non-empty target is refused");
        assert!(error.to_string().contains("already holds nodes"), "{error}");
        assert_eq!(store.dump().await.unwrap().0.len(), 75);
        // The copy searches like the original.
        let search = SearchRequest { text: "risks".into(), kinds: vec![], first: 3, audience: Default::default() };
        assert_eq!(store.search(&search).await.unwrap()[0].node.id, origin.search(&search).await.unwrap()[0].node.id);
    }

    // -----------------------------------------------------------------------
    // Relationships with a foreign end: a node of a partner (`nw`), which this
    // store names by id and never holds.
    // -----------------------------------------------------------------------

    /// An influence of the test organisation's learning on a partner's principle.
    fn influence_abroad() -> Edge {
        edge(json!({
            "kind": "INFLUENCED", "from": "t:learning:l", "to": "nw:principle:x", "how": "REVISED_PRINCIPLE",
            "systemCondition": "MENTAL_MODELS", "on": "2024-03-04", "strength": "STRONG", "assertion": "SOURCED",
            "sources": ["t:source:s"]
        }))
    }

    /// An influence of a partner's learning on the test organisation's principle. Its date is
    /// before the local learning's, which the store cannot check for a foreign learning.
    fn influence_from_abroad() -> Edge {
        edge(json!({
            "kind": "INFLUENCED", "from": "nw:learning:y", "to": "t:principle:p", "how": "SHIFTED_MINDSET",
            "systemCondition": "RELATIONSHIPS", "on": "1999-01-01", "strength": "WEAK", "assertion": "INFERRED"
        }))
    }

    fn upholds_abroad() -> Edge {
        edge(json!({"kind": "UPHOLDS", "from": "t:principle:p", "to": "nw:value:w"}))
    }

    /// The small graph and three relationships with a foreign end, both ways.
    async fn with_foreign_edges(store: &Store) {
        store.apply(small_graph()).await.map_err(|f| f.error).unwrap();
        let links = [influence_abroad(), influence_from_abroad(), upholds_abroad()];
        let applied =
            store.apply(links.iter().cloned().map(Change::Link).collect()).await.map_err(|f| f.error).unwrap();
        assert_eq!(applied.len(), 3);
    }

    async fn edges_of(store: &Store, at: &str, direction: Direction) -> Vec<String> {
        sorted_edges(&store.edges(&[id(at)], direction).await.unwrap())
    }

    /// How many foreign stubs a Neo4j store holds (`None` on other backends).
    async fn neo4j_stubs(store: &Store) -> Option<i64> {
        let uri = neo4j_uri().filter(|_| store.backend() == "neo4j")?;
        let options = neo4j_options();
        let config = neo4rs::ConfigBuilder::default().uri(uri.as_str()).user(options.user).password(options.password);
        let graph = neo4rs::Graph::connect(config.build().unwrap()).unwrap();
        let mut rows = graph.execute(neo4rs::query("MATCH (f:ForeignNode) RETURN count(f) AS n")).await.unwrap();
        rows.next().await.unwrap().map(|row| row.get::<i64>("n").unwrap())
    }

    pub async fn foreign_edges_read_both_ways(store: &Store) {
        with_foreign_edges(store).await;
        // By the local end and by the foreign id, each way.
        assert_eq!(edges_of(store, "t:learning:l", Direction::Out).await, sorted_edges(&[influence_abroad()]));
        assert_eq!(edges_of(store, "nw:principle:x", Direction::In).await, sorted_edges(&[influence_abroad()]));
        assert_eq!(edges_of(store, "nw:learning:y", Direction::Out).await, sorted_edges(&[influence_from_abroad()]));
        assert_eq!(edges_of(store, "t:principle:p", Direction::In).await, sorted_edges(&[influence_from_abroad()]));
        assert!(edges_of(store, "nw:principle:x", Direction::Out).await.is_empty());
        assert!(edges_of(store, "nw:learning:y", Direction::In).await.is_empty());
        let out_of_p = edges_of(store, "t:principle:p", Direction::Out).await;
        assert_eq!(out_of_p.len(), 2, "{out_of_p:?}");
        assert!(out_of_p.contains(&edge_json(&upholds_abroad())));
        // Several ids at once, local and foreign, find each relationship once.
        let several = [id("t:learning:l"), id("nw:principle:x"), id("nw:learning:y")];
        let both = store.edges(&several, Direction::Out).await.unwrap();
        assert_eq!(sorted_edges(&both), sorted_edges(&[influence_abroad(), influence_from_abroad()]));

        // Foreign ends are no nodes: lists, counts, emptiness and lookups do not see them.
        assert!(store.nodes(&[id("nw:principle:x"), id("nw:learning:y")]).await.unwrap().is_empty());
        assert_eq!(store.count(NodeKind::Principle, &NodeFilter::default()).await.unwrap(), 1);
        let all = store.list(&list(NodeKind::Principle, NodeFilter::default(), OrderField::Id, false)).await.unwrap();
        assert_eq!(ids(&all), ["t:principle:p"]);

        // Influences across organisations include them, filtered by the ends' organisations.
        let across = |from: Option<&'static str>, to: Option<&'static str>| async move {
            sorted_edges(&store.influences_across(from, to, 10).await.unwrap())
        };
        assert_eq!(across(None, None).await, sorted_edges(&[influence_abroad(), influence_from_abroad()]));
        assert_eq!(across(Some("t"), Some("nw")).await, sorted_edges(&[influence_abroad()]));
        assert_eq!(across(Some("nw"), None).await, sorted_edges(&[influence_from_abroad()]));
        assert!(across(Some("nw"), Some("nw")).await.is_empty());

        // Relationships with a foreign end are read apart from the others: whether their far
        // end may be seen is for its owner to say, so no audience's view of this store holds
        // them, and a view across partners asks the owner.
        store
            .apply(vec![Change::Update { id: id("t:principle:p"), patch: patch(json!({"visibility": "PRIVATE"})) }])
            .await
            .map_err(|f| f.error)
            .unwrap();
        let abroad = |at: &'static str, direction| async move {
            sorted_edges(&store.foreign_edges(&[id(at)], direction).await.unwrap())
        };
        assert_eq!(abroad("nw:principle:x", Direction::In).await, sorted_edges(&[influence_abroad()]));
        assert_eq!(abroad("t:learning:l", Direction::Out).await, sorted_edges(&[influence_abroad()]));
        assert_eq!(abroad("t:principle:p", Direction::In).await, sorted_edges(&[influence_from_abroad()]));
        assert_eq!(abroad("t:principle:p", Direction::Out).await, sorted_edges(&[upholds_abroad()]));
        assert!(abroad("nw:principle:x", Direction::Out).await.is_empty());
        for audience in [Audience::Public, Audience::Member("t".into()), Audience::Everything] {
            for (at, direction) in [("nw:principle:x", Direction::In), ("t:principle:p", Direction::In)] {
                let seen = store.visible_edges(&[id(at)], direction, &audience).await.unwrap();
                assert!(seen.iter().all(|e| e.from.organisation() == "t" && e.to.organisation() == "t"), "{seen:?}");
            }
        }
        let anonymous: Store = std::sync::Arc::new(store::Visible::new(store.clone(), Caller::Anonymous));
        assert!(edges_of(&anonymous, "t:learning:l", Direction::Out).await.is_empty());
        assert!(anonymous.influences_across(None, None, 10).await.unwrap().is_empty());
        // A caller's dump keeps this store's claims about foreign ids whose end here it may see.
        assert_eq!(sorted_edges(&anonymous.dump().await.unwrap().1), sorted_edges(&[influence_abroad()]));

        // Walks stay within this store and do not fail on foreign ends.
        let trace = store
            .trace(&TraceRequest {
                from: id("t:learning:l"),
                direction: TraceDirection::Both,
                max_depth: 3,
                via: vec![],
                kinds: vec![],
                as_of: None,
                audience: Audience::Everything,
                max_nodes: 100,
            })
            .await
            .unwrap();
        let reached: Vec<&str> = trace.nodes.iter().map(|(n, _)| n.id.as_str()).collect();
        assert!(reached.iter().all(|id| id.starts_with("t:")), "{reached:?}");
        assert!(trace.edges.iter().all(|e| e.from.organisation() == "t" && e.to.organisation() == "t"));
        let request = |to: &str| PathRequest {
            from: id("t:principle:p"),
            to: id(to),
            direction: TraceDirection::Both,
            max_depth: 4,
            via: vec![],
            first: 10,
            audience: Audience::Everything,
        };
        let paths = store.paths(&request("t:value:v")).await.unwrap();
        assert_eq!(paths.paths.len(), 1, "{:?}", paths.paths);
        assert!(paths.nodes.iter().all(|n| n.organisation() == "t"));
        // A member's walk asks which far ends it may see; a foreign end is none of them, and
        // the paths through this store's own nodes are the same.
        let member = PathRequest { audience: Audience::Member("t".into()), ..request("t:value:v") };
        assert_eq!(store.paths(&member).await.unwrap().paths, paths.paths);
        let abroad = store.paths(&request("nw:value:w")).await;
        assert!(matches!(abroad, Err(Error::NotFound(_))), "{abroad:?}");
    }

    pub async fn foreign_edges_follow_the_rules(store: &Store) {
        with_foreign_edges(store).await;
        let conflict = |e: &Error| matches!(e, Error::Conflict(_));
        let not_found = |e: &Error| matches!(e, Error::NotFound(_));
        // Two foreign ends: the relationship would have no end here.
        let stranger = edge(json!({"kind": "UPHOLDS", "from": "nw:principle:x", "to": "lake:value:v"}));
        refused(store, Change::Link(stranger), |e| reason(e) == Some("NO_LOCAL_END")).await;
        // A missing node of an organisation this store holds is not found, as ever.
        let missing = edge(json!({"kind": "UPHOLDS", "from": "t:principle:nope", "to": "nw:value:w"}));
        refused(store, Change::Link(missing), not_found).await;
        let missing = edge(json!({"kind": "UPHOLDS", "from": "nw:principle:x", "to": "t:value:nope"}));
        refused(store, Change::Link(missing), not_found).await;
        // The same relationship twice, either way round.
        refused(store, Change::Link(upholds_abroad()), conflict).await;
        refused(store, Change::Link(influence_from_abroad()), conflict).await;
        // Kinds still decide which ends a relationship may join, foreign or not.
        let mut wrong = upholds_abroad();
        wrong.to = id("nw:learning:w");
        refused(store, Change::Link(wrong), |e| reason(e) == Some("LINK_NOT_ALLOWED")).await;
        // Sources must be nodes of this store.
        let mut unsourced = influence_abroad();
        unsourced.to = id("nw:principle:z");
        std::sync::Arc::make_mut(unsourced.influence.as_mut().unwrap()).sources = vec![id("nw:source:s")];
        refused(store, Change::Link(unsourced), |e| reason(e) == Some("UNKNOWN_NODE")).await;
        // A learning's date is checked against its influences on foreign nodes too.
        let late = patch(json!({"capturedOn": "2024-03-10"}));
        refused(store, Change::Update { id: id("t:learning:l"), patch: late }, |e| {
            reason(e) == Some("INFLUENCE_BEFORE_LEARNING")
        })
        .await;
        // A source that backs an influence on a foreign node stays.
        refused(store, Change::Delete(id("t:source:s")), conflict).await;

        // Unlink removes exactly that relationship, and only once.
        let unlink =
            Change::Unlink { from: id("t:principle:p"), kind: RelationshipKind::Upholds, to: id("nw:value:w") };
        let applied = store.apply(vec![unlink.clone()]).await.map_err(|f| f.error).unwrap();
        assert!(matches!(&applied[0], Applied::Unlinked(e) if *e == upholds_abroad()));
        assert!(edges_of(store, "nw:value:w", Direction::In).await.is_empty());
        assert_eq!(edges_of(store, "t:principle:p", Direction::Out).await.len(), 1);
        refused(store, unlink, not_found).await;
        let from_abroad =
            Change::Unlink { from: id("nw:learning:y"), kind: RelationshipKind::Influenced, to: id("t:principle:p") };
        store.apply(vec![from_abroad]).await.map_err(|f| f.error).unwrap();
        assert!(edges_of(store, "t:principle:p", Direction::In).await.is_empty());
        // On Neo4j, the stubs of the foreign ends went with their last relationships.
        if let Some(stubs) = neo4j_stubs(store).await {
            assert_eq!(stubs, 1, "only nw:principle:x keeps a relationship");
        }
    }

    pub async fn a_partner_linked_here_becomes_local_only_once_unlinked(store: &Store) {
        with_foreign_edges(store).await;
        // Holding `nw` here would leave three relationships pointing at nodes nobody holds.
        let partner = || Change::Create(node(json!({"id": "nw:organisation:nw", "title": "Northwind"})));
        refused(store, partner(), |e| reason(e) == Some("PARTNER_LINKS")).await;
        // Unlinking one of them first, in the same change set, is not enough, and is undone.
        let from_abroad =
            Change::Unlink { from: id("nw:learning:y"), kind: RelationshipKind::Influenced, to: id("t:principle:p") };
        let before = store.dump().await.unwrap();
        let (index, error) = expect_err(store.apply(vec![from_abroad.clone(), partner()]).await);
        assert_eq!((index, reason(&error)), (1, Some("PARTNER_LINKS")), "{error:?}");
        assert_eq!(sorted_edges(&store.dump().await.unwrap().1), sorted_edges(&before.1), "the unlink was undone");
        // Once nothing here names its nodes, the organisation may move in.
        let unlinks = vec![
            from_abroad,
            Change::Unlink { from: id("t:principle:p"), kind: RelationshipKind::Upholds, to: id("nw:value:w") },
            Change::Unlink { from: id("t:learning:l"), kind: RelationshipKind::Influenced, to: id("nw:principle:x") },
            partner(),
        ];
        let applied = store.apply(unlinks).await.map_err(|f| f.error).unwrap();
        assert!(matches!(&applied[3], Applied::Created(n) if n.id == id("nw:organisation:nw")), "{applied:?}");
        if let Some(stubs) = neo4j_stubs(store).await {
            assert_eq!(stubs, 0, "no stub is left once its relationships are gone");
        }
    }

    pub async fn foreign_edges_are_removed_with_their_local_node(store: &Store) {
        with_foreign_edges(store).await;
        let applied = store.apply(vec![Change::Delete(id("t:principle:p"))]).await.map_err(|f| f.error).unwrap();
        let Applied::Deleted { edges, .. } = &applied[0] else { panic!("{applied:?}") };
        let local = edge(json!({"kind": "UPHOLDS", "from": "t:principle:p", "to": "t:value:v"}));
        assert_eq!(sorted_edges(edges), sorted_edges(&[influence_from_abroad(), upholds_abroad(), local]));
        assert!(edges_of(store, "nw:learning:y", Direction::Out).await.is_empty());
        assert!(edges_of(store, "nw:value:w", Direction::In).await.is_empty());
        assert_eq!(edges_of(store, "nw:principle:x", Direction::In).await, sorted_edges(&[influence_abroad()]));
        assert_eq!(sorted_edges(&store.dump().await.unwrap().1), sorted_edges(&[influence_abroad()]));
        if let Some(stubs) = neo4j_stubs(store).await {
            assert_eq!(stubs, 1, "only nw:principle:x keeps a relationship");
        }
        store.apply(vec![Change::Delete(id("t:learning:l"))]).await.map_err(|f| f.error).unwrap();
        assert!(store.dump().await.unwrap().1.is_empty());
        if let Some(stubs) = neo4j_stubs(store).await {
            assert_eq!(stubs, 0);
        }
    }

    pub async fn foreign_edges_obey_the_actor(store: &Store) {
        store.apply(small_graph()).await.map_err(|f| f.error).unwrap();
        let member = |partners: &[&str]| Actor {
            caller: Caller::Member(Member { organisation: "t".into(), role: Role::Editor, subject: "test".into() }),
            operation: "link".into(),
            partners: partners.iter().map(|p| p.to_string()).collect(),
            confirmation: None,
        };
        let as_member = |change: Change, partners: &'static [&'static str]| async move {
            store.apply_as(vec![change], Some(&member(partners))).await.map_err(|f| f.error)
        };
        // An organisation that is no partner: its ids are not found, as they always were.
        let error = as_member(Change::Link(upholds_abroad()), &["lake"]).await.unwrap_err();
        assert!(matches!(error, Error::NotFound(_)), "{error:?}");
        // A partner's id may be the far end of a relationship from the member's node…
        as_member(Change::Link(upholds_abroad()), &["nw"]).await.unwrap();
        // …but the member changes nothing of the partner's, not even its relationships.
        let error = as_member(Change::Link(influence_from_abroad()), &["nw"]).await.unwrap_err();
        assert!(matches!(error, Error::Forbidden(_)), "{error:?}");
        let unlink = |from: &str, kind, to: &str| Change::Unlink { from: id(from), kind, to: id(to) };
        store.apply(vec![Change::Link(influence_from_abroad())]).await.map_err(|f| f.error).unwrap();
        let error = as_member(unlink("nw:learning:y", RelationshipKind::Influenced, "t:principle:p"), &["nw"])
            .await
            .unwrap_err();
        assert!(matches!(error, Error::Forbidden(_)), "{error:?}");
        as_member(unlink("t:principle:p", RelationshipKind::Upholds, "nw:value:w"), &["nw"]).await.unwrap();
        assert!(edges_of(store, "nw:value:w", Direction::In).await.is_empty());
        // A member of another organisation may not link from the test organisation's node.
        let outsider = Actor {
            caller: Caller::Member(Member { organisation: "u".into(), role: Role::Editor, subject: "u".into() }),
            operation: "link".into(),
            partners: vec!["nw".into()],
            confirmation: None,
        };
        let error = store.apply_as(vec![Change::Link(upholds_abroad())], Some(&outsider)).await.unwrap_err().error;
        assert!(matches!(error, Error::Forbidden(_)), "{error:?}");
    }

    pub async fn foreign_edges_survive_dump_import_and_copy(store: &Store) {
        with_foreign_edges(store).await;
        let (nodes, edges) = store.dump().await.unwrap();
        assert_eq!(edges.len(), 4);
        // Through the seed format, as `export` and `import` carry it.
        let dir = tempfile::tempdir().unwrap();
        let imported = sqlite_store(&dir, "imported.db").await;
        let text = serde_json::to_string(&SeedFile::from_graph(&nodes, &edges)).unwrap();
        let loaded = pvgraph::seed::load(&imported, &text).await.expect("the export imports");
        assert_eq!((loaded.nodes, loaded.relationships), (5, 4));
        assert_eq!(loaded.foreign, [("nw".to_owned(), 3)]);
        let summary = loaded.to_string();
        assert!(summary.ends_with("; 3 relationships to nodes of nw, which this instance does not hold"), "{summary}");
        assert_eq!(sorted_edges(&imported.dump().await.unwrap().1), sorted_edges(&edges));
        // Through `copy`, there and back.
        let copied = sqlite_store(&dir, "copied.db").await;
        pvgraph::cli::copy(store, &copied).await.expect("the copy works");
        assert_eq!(sorted_edges(&copied.dump().await.unwrap().1), sorted_edges(&edges));
        assert_eq!(sorted_nodes(&copied.dump().await.unwrap().0), sorted_nodes(&nodes));
    }
}
