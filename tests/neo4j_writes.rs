//! Change sets on Neo4j in few statements (see `src/store/neo4j/write.rs`): the
//! first statement takes the change lock and reads what the rules need, the
//! last writes the changes and the audit entry together. These tests count the
//! statements, and check what folding them must not lose: a change set refused
//! by the rules, or failing in its last statement, keeps neither its changes nor
//! its audit entry, and frees the lock for the next one.
//!
//! They need a Neo4j server: `PVGRAPH_TEST_NEO4J` holds its Bolt URI (user and
//! password from `PVGRAPH_NEO4J_USER` / `PVGRAPH_NEO4J_PASSWORD`); without it
//! they say so and pass. They empty its graph.

use pvgraph::domain::{Actor, Caller, Change, Edge, EdgeRecord, Error, Member, Node, NodeId, Role};
use pvgraph::store::neo4j::Neo4jStore;
use pvgraph::store::{AuditQuery, Direction, GraphStore};
use serde_json::{Value, json};

mod common;

/// Serialises these tests: they share one database.
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

struct Neo4j {
    store: Neo4jStore,
    /// A connection of its own, for what the store does not do (constraints of a test's own).
    raw: neo4rs::Graph,
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

/// A constraint one test adds, so that a second audit entry of the same subject fails.
const SUBJECT_ONCE: &str = "audit_subject_once_in_test";

async fn neo4j() -> Option<Neo4j> {
    let Some(uri) = std::env::var("PVGRAPH_TEST_NEO4J").ok().filter(|u| !u.is_empty()) else {
        eprintln!("note: PVGRAPH_TEST_NEO4J is not set; skipping this Neo4j write test");
        return None;
    };
    let turn = TURN.lock().await;
    let options = common::neo4j_options();
    let store = Neo4jStore::open(&uri, &options).await.unwrap();
    let config = neo4rs::ConfigBuilder::default().uri(uri.as_str()).user(options.user).password(options.password);
    let raw = neo4rs::Graph::connect(config.build().unwrap()).unwrap();
    // A test that failed half-way may have left its constraint behind.
    raw.run(neo4rs::query(&format!("DROP CONSTRAINT {SUBJECT_ONCE} IF EXISTS"))).await.unwrap();
    raw.run(neo4rs::query("MATCH (n) WHERE NOT n:ChangeLock DETACH DELETE n")).await.unwrap();
    let graph = [
        json!({"id": "t:organisation:t", "title": "Test org"}),
        json!({"id": "t:principle:p", "title": "Principle", "statement": "do good"}),
        json!({"id": "t:principle:q", "title": "Another", "statement": "do better"}),
        json!({"id": "t:learning:l", "title": "Learning", "statement": "we learnt", "kind": "MINDSET",
               "capturedOn": "2024-03-01"}),
    ];
    let changes = graph.into_iter().map(|record| Change::Create(node(record))).collect();
    store.apply(changes).await.map_err(|f| f.error).unwrap();
    Some(Neo4j { store, raw, _turn: turn })
}

fn node(record: Value) -> Node {
    let Value::Object(map) = record else { panic!("a record is an object") };
    Node::from_record(map, chrono::Utc::now()).expect("a valid node")
}

fn influence(to: &str) -> Edge {
    let record = json!({
        "kind": "INFLUENCED", "from": "t:learning:l", "to": to, "how": "INFORMED_EXPERIMENT",
        "systemCondition": "PRACTICES", "on": "2024-03-05", "strength": "MODERATE", "assertion": "INFERRED"
    });
    EdgeRecord::from_json(record).and_then(EdgeRecord::into_edge).expect("a valid edge")
}

fn editor() -> Actor {
    Actor {
        caller: Caller::Member(Member { organisation: "t".into(), role: Role::Editor, subject: "token:t1".into() }),
        operation: "recordInfluence".into(),
        partners: Vec::new(),
    }
}

/// What the store holds that a change set could have left behind: the learning's influences and
/// the organisation's audit entries.
async fn held(store: &Neo4jStore) -> (usize, u64) {
    let learning = NodeId::parse("t:learning:l").unwrap();
    let influences = store.edges(&[learning], Direction::Out).await.unwrap().len();
    (influences, store.audit_count("t").await.unwrap())
}

#[tokio::test]
async fn recording_an_influence_is_two_statements_and_a_refusal_one() {
    let Some(neo4j) = neo4j().await else { return };
    let store = &neo4j.store;
    let before = store.change_statements();
    let applied = store.apply_as(vec![Change::Link(influence("t:principle:p"))], Some(&editor())).await;
    applied.map_err(|f| f.error).unwrap();
    assert_eq!(store.change_statements() - before, 2, "the lock with the reads; the write with the audit entry");
    assert_eq!(held(store).await, (1, 1));
    let entries = store.audit_log(&AuditQuery { organisation: "t".into(), after: None, limit: 10 }).await.unwrap();
    assert_eq!(entries[0].operation, "recordInfluence");
    assert_eq!(entries[0].changes[0]["op"], "link");

    // The same influence again is refused by the rules after the first statement, and leaves
    // nothing, audit entry included.
    let before = store.change_statements();
    let refused = store.apply_as(vec![Change::Link(influence("t:principle:p"))], Some(&editor())).await;
    assert!(matches!(refused.unwrap_err().error, Error::Conflict(_)));
    assert_eq!(store.change_statements() - before, 1);
    assert_eq!(held(store).await, (1, 1));

    // Nodes created and linked in one change set are still one statement each way.
    let before = store.change_statements();
    let changes = vec![
        Change::Create(node(json!({"id": "t:principle:r", "title": "New", "statement": "do it"}))),
        Change::Link(influence("t:principle:r")),
        Change::Link(influence("t:principle:q")),
    ];
    store.apply_as(changes, Some(&editor())).await.map_err(|f| f.error).unwrap();
    assert_eq!(store.change_statements() - before, 2);
    assert_eq!(held(store).await, (3, 2));
}

#[tokio::test]
async fn a_failing_last_statement_keeps_neither_the_changes_nor_the_audit_entry() {
    let Some(neo4j) = neo4j().await else { return };
    let store = &neo4j.store;
    // From here on a second audit entry of the same subject breaks a rule of the database: the
    // rules of the change set pass, and its last statement, which writes the entry beside the
    // relationship, fails.
    let constraint = format!("CREATE CONSTRAINT {SUBJECT_ONCE} FOR (a:AuditEntry) REQUIRE a.subject IS UNIQUE");
    neo4j.raw.run(neo4rs::query(&constraint)).await.unwrap();
    store.apply_as(vec![Change::Link(influence("t:principle:p"))], Some(&editor())).await.map_err(|f| f.error).unwrap();
    assert_eq!(held(store).await, (1, 1));
    let failed = store.apply_as(vec![Change::Link(influence("t:principle:q"))], Some(&editor())).await;
    assert!(failed.is_err());
    assert_eq!(held(store).await, (1, 1), "the relationship went with its audit entry");
    // The lock was let go: the next change set gets through (it would wait out the lock otherwise).
    neo4j.raw.run(neo4rs::query(&format!("DROP CONSTRAINT {SUBJECT_ONCE}"))).await.unwrap();
    store.apply_as(vec![Change::Link(influence("t:principle:q"))], Some(&editor())).await.map_err(|f| f.error).unwrap();
    assert_eq!(held(store).await, (2, 2));
}

#[tokio::test]
async fn a_change_set_whose_caller_goes_away_still_ends_and_frees_the_lock() {
    let Some(neo4j) = neo4j().await else { return };
    let store = &neo4j.store;
    // Two connections in the pool, so that the next change set is not simply handed the
    // connection of the one given up (whose reuse would end its transaction by the way).
    let (a, b) = tokio::join!(held(store), held(store));
    assert_eq!((a, b), ((0, 0), (0, 0)));
    // A change set given up once its first statement, the one that takes the lock, is out:
    // what a request does when its client hangs up in the middle of a mutation.
    let actor = editor();
    let before = store.change_statements();
    {
        let mut given_up = std::pin::pin!(store.apply_as(vec![Change::Link(influence("t:principle:p"))], Some(&actor)));
        while store.change_statements() == before {
            if futures::poll!(given_up.as_mut()).is_ready() {
                panic!("the change set ended before it could be given up");
            }
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
    }
    // The next change set must get the lock, not wait behind a transaction left open on an idle
    // connection. The minute is a bound on a hang, not a speed to meet.
    let next = store.apply_as(vec![Change::Link(influence("t:principle:q"))], Some(&actor));
    let next = tokio::time::timeout(std::time::Duration::from_secs(60), next).await;
    next.expect("the change lock was never let go").map_err(|f| f.error).unwrap();
    // The given-up change set runs to its end rather than stopping half-way (it may still be
    // waiting for the lock behind the next one): both links get in, each with its audit entry.
    let mut now = held(store).await;
    for _ in 0..600 {
        if now == (2, 2) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        now = held(store).await;
    }
    assert_eq!(now, (2, 2));
}
