//! Change sets on Neo4j in few statements (see `src/store/neo4j/write.rs`). One
//! that only creates nodes and links them is first tried on a supposition (the
//! graph its caller expects, `write/supposed.rs`): one statement locks and reads
//! the nodes it names, checks that the graph is as supposed and writes. When it
//! is not, nothing is written, and the change set is read first: the rules run
//! on what that statement read, and a last statement locks the nodes read,
//! checks that what was read is unchanged and writes the changes and the audit
//! entry together. These tests count the statements, and check what that must
//! not lose: a change set refused by the rules, or failing in its last
//! statement, keeps neither its changes nor its audit entry, and frees its locks
//! for the next one; a change set that another overtook between its read and
//! its write runs again, and is written or refused as the graph now stands.
//! They also check how the two kinds of change set share the graph: one that
//! reads first never waits for the change lock, one that takes the change lock
//! still waits for the nodes another has locked, and many of both at once on a
//! few nodes write each relationship once, all refusals being conflicts.
//!
//! They need a Neo4j server: `PVGRAPH_TEST_NEO4J` holds its Bolt URI (user and
//! password from `PVGRAPH_NEO4J_USER` / `PVGRAPH_NEO4J_PASSWORD`); without it
//! they say so and pass. They empty its graph.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use pvgraph::domain::{
    Actor, Applied, Caller, Change, Confirmation, Edge, EdgeRecord, Error, Member, Node, NodeId, NodePatch, Role,
};
use pvgraph::store::neo4j::Neo4jStore;
use pvgraph::store::{AuditQuery, Direction, Failed, GraphStore};
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
    influence_from("t:learning:l", to)
}

fn influence_from(from: &str, to: &str) -> Edge {
    let record = json!({
        "kind": "INFLUENCED", "from": from, "to": to, "how": "INFORMED_EXPERIMENT",
        "systemCondition": "PRACTICES", "on": "2024-03-05", "strength": "MODERATE", "assertion": "INFERRED"
    });
    EdgeRecord::from_json(record).and_then(EdgeRecord::into_edge).expect("a valid edge")
}

fn editor() -> Actor {
    Actor {
        caller: Caller::Member(Member { organisation: "t".into(), role: Role::Editor, subject: "token:t1".into() }),
        operation: "recordInfluence".into(),
        partners: Vec::new(),
        confirmation: None,
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
async fn recording_an_influence_is_one_statement_and_a_refusal_two() {
    let Some(neo4j) = neo4j().await else { return };
    let store = &neo4j.store;
    let before = store.change_statements();
    let applied = store.apply_as(vec![Change::Link(influence("t:principle:p"))], Some(&editor())).await;
    applied.map_err(|f| f.error).unwrap();
    assert_eq!(
        store.change_statements() - before,
        1,
        "the locks, the reads, the check of the supposition and the write with the audit entry"
    );
    assert_eq!(held(store).await, (1, 1));
    let entries = store.audit_log(&AuditQuery { organisation: "t".into(), after: None, limit: 10 }).await.unwrap();
    assert_eq!(entries[0].operation, "recordInfluence");
    assert_eq!(entries[0].changes[0]["op"], "link");

    // The same influence again: the first statement finds it there, not as supposed, and writes
    // nothing; the rules refuse it on what that statement read, once the second has checked
    // under the lock that it still holds. Nothing is left, audit entry included.
    let before = store.change_statements();
    let refused = store.apply_as(vec![Change::Link(influence("t:principle:p"))], Some(&editor())).await;
    assert!(matches!(refused.unwrap_err().error, Error::Conflict(_)));
    assert_eq!(store.change_statements() - before, 2);
    assert_eq!(held(store).await, (1, 1));

    // Nodes created and linked in one change set are one statement too.
    let before = store.change_statements();
    let changes = vec![
        Change::Create(node(json!({"id": "t:principle:r", "title": "New", "statement": "do it"}))),
        Change::Link(influence("t:principle:r")),
        Change::Link(influence("t:principle:q")),
    ];
    store.apply_as(changes, Some(&editor())).await.map_err(|f| f.error).unwrap();
    assert_eq!(store.change_statements() - before, 1);
    assert_eq!(held(store).await, (3, 2));
}

/// Where the graph is not as the supposition has it, the rules decide on what the statement read,
/// exactly as they would have without the supposition: each case below is decided as it would be,
/// in two statements, or written in one where the graph is as supposed.
#[tokio::test]
async fn where_the_graph_is_not_as_supposed_the_rules_decide_on_what_was_read() {
    let Some(neo4j) = neo4j().await else { return };
    let store = &neo4j.store;
    let others = [
        json!({"id": "u:organisation:u", "title": "Another org"}),
        json!({"id": "u:principle:private", "title": "Theirs", "statement": "ours only", "visibility": "PRIVATE"}),
        json!({"id": "u:principle:shared", "title": "Shared", "statement": "for partners", "visibility": "PARTNERS"}),
        json!({"id": "t:principle:cited", "title": "Cited", "statement": "by the book"}),
        json!({"id": "t:source:report", "title": "Report", "url": "https://example.org/report"}),
    ];
    store.apply(others.into_iter().map(|r| Change::Create(node(r))).collect()).await.map_err(|f| f.error).unwrap();
    // Records `changes` as the editor: the outcome, and how many statements it took.
    let record = |changes: Vec<Change>| async move {
        let before = store.change_statements();
        let outcome = store.apply_as(changes, Some(&editor())).await.map_err(|f| f.error);
        (outcome, store.change_statements() - before)
    };
    let dated = |to: &str, on: &str| {
        let mut edge = influence(to);
        std::sync::Arc::make_mut(edge.influence.as_mut().unwrap()).on = on.parse().unwrap();
        vec![Change::Link(edge)]
    };

    // The learning was recorded today, and began on 2024-03-01, the day it was captured: an
    // influence on 2024-03-05 is as supposed; one a month before it began is refused.
    let (outcome, statements) = record(dated("t:principle:p", "2024-03-05")).await;
    assert!(outcome.is_ok(), "{outcome:?}");
    assert_eq!(statements, 1);
    let (outcome, statements) = record(dated("t:principle:q", "2024-02-01")).await;
    assert!(matches!(&outcome, Err(Error::Invalid { reason: Some("INFLUENCE_BEFORE_LEARNING"), .. })), "{outcome:?}");
    assert_eq!(statements, 2);

    // Another organisation's node shared with partners is seen; its private one is missing to
    // the editor, as is a node that is not there.
    let (outcome, statements) = record(vec![Change::Link(influence("u:principle:shared"))]).await;
    assert!(outcome.is_ok(), "{outcome:?}");
    assert_eq!(statements, 1);
    for missing in ["u:principle:private", "t:principle:nowhere"] {
        let (outcome, statements) = record(vec![Change::Link(influence(missing))]).await;
        assert!(matches!(&outcome, Err(Error::NotFound(m)) if m.contains(missing)), "{outcome:?}");
        assert_eq!(statements, 2, "{missing}");
    }

    // A node created with an id taken is a conflict, and so is its influence's relationship.
    let taken = node(json!({"id": "t:principle:q", "title": "Again", "statement": "twice"}));
    let (outcome, statements) = record(vec![Change::Create(taken)]).await;
    assert!(matches!(&outcome, Err(Error::Conflict(m)) if m.contains("t:principle:q")), "{outcome:?}");
    assert_eq!(statements, 2);

    // An influence's sources are supposed there too: one that is not is refused in the rules'
    // words.
    let citing = |to: &str, source: &str| {
        let mut edge = influence(to);
        std::sync::Arc::make_mut(edge.influence.as_mut().unwrap()).sources = vec![NodeId::parse(source).unwrap()];
        vec![Change::Link(edge)]
    };
    let (outcome, statements) = record(citing("t:principle:q", "t:source:nowhere")).await;
    assert!(matches!(&outcome, Err(Error::Invalid { reason: Some("UNKNOWN_NODE"), .. })), "{outcome:?}");
    assert_eq!(statements, 2);
    let (outcome, statements) = record(citing("t:principle:cited", "t:source:report")).await;
    assert!(outcome.is_ok(), "{outcome:?}");
    assert_eq!(statements, 1);

    // A learning created in the change set began when it says, and influences in the same
    // statement.
    let created = node(json!({"id": "t:learning:new", "title": "New", "statement": "fresh", "kind": "MINDSET",
        "capturedOn": "2024-03-01"}));
    let (outcome, statements) =
        record(vec![Change::Create(created), Change::Link(influence_from("t:learning:new", "t:principle:p"))]).await;
    assert!(outcome.is_ok(), "{outcome:?}");
    assert_eq!(statements, 1);

    // A learning written before nodes said the day they began says only the day it was recorded:
    // today, after the influence, so the graph is not taken to be as supposed; the rules, on
    // the learning as read, let it pass.
    neo4j.raw.run(neo4rs::query("MATCH (n:Node {id: 't:learning:l'}) REMOVE n.existedSince")).await.unwrap();
    let (outcome, statements) = record(dated("t:principle:q", "2024-03-05")).await;
    assert!(outcome.is_ok(), "{outcome:?}");
    assert_eq!(statements, 2);
    // The learning's three influences written on the supposition, one after it; the refusals
    // left nothing.
    assert_eq!(held(store).await, (4, 5));
}

/// A confirmation of this API token, asked of `store` as the server asks it (`Authenticator`),
/// which counts in `asked` the times it is asked.
fn confirmation_of(store: &Neo4jStore, token: &str, asked: &Arc<AtomicUsize>) -> Confirmation {
    let authenticator = pvgraph::auth::Authenticator::new(Arc::new(store.clone()));
    let (token, asked) = (token.to_owned(), Arc::clone(asked));
    Confirmation::new(pvgraph::auth::hash_token(&token), async move {
        asked.fetch_add(1, Ordering::SeqCst);
        authenticator.caller_of_token(&token).await.map_err(Arc::new)
    })
}

/// A caller admitted on an API token nobody has asked the store about yet (a request on a token
/// the server has seen before) has its change set checked in its last statement: the token is
/// confirmed there, without a statement of its own. A token revoked meanwhile, or one that
/// names someone else now, writes nothing, and the confirmation asked apart says why.
#[tokio::test]
async fn an_api_token_is_confirmed_by_the_statement_that_writes() {
    let Some(neo4j) = neo4j().await else { return };
    let store = &neo4j.store;
    let issued = pvgraph::auth::issue_token("t", Role::Editor, chrono::Utc::now());
    store.save_token(&issued.stored).await.unwrap();
    let member =
        Member { organisation: "t".into(), role: Role::Editor, subject: format!("token:{}", issued.stored.id) };
    let caller = Caller::Member(member.clone());
    // Records an influence on `to` as `caller`, admitted ahead of `confirmation`.
    let link = |to: &str, caller: &Caller, confirmation: &Confirmation| {
        let actor = Actor { caller: caller.clone(), confirmation: Some(confirmation.clone()), ..editor() };
        let changes = vec![Change::Link(influence(to))];
        async move { store.apply_as(changes, Some(&actor)).await }
    };

    let asked = Arc::new(AtomicUsize::new(0));
    let confirmation = confirmation_of(store, &issued.token, &asked);
    let (reads, statements) = (store.reads(), store.change_statements());
    link("t:principle:p", &caller, &confirmation).await.map_err(|f| f.error).unwrap();
    assert_eq!(
        store.change_statements() - statements,
        1,
        "the check of the token, the reads, the check of the supposition and the write"
    );
    assert_eq!(store.reads() - reads, 0, "the token was not looked up apart");
    assert_eq!(asked.load(Ordering::SeqCst), 0, "nor asked about");
    assert!(confirmation.is_settled());
    assert_eq!(confirmation.outcome().await.unwrap(), caller);
    assert_eq!(held(store).await, (1, 1));

    // The same token, now naming someone else than the caller admitted (a viewer where it was
    // an editor), writes nothing.
    let viewer = Caller::Member(Member { role: Role::Viewer, ..member.clone() });
    let confirmation = confirmation_of(store, &issued.token, &asked);
    let error = link("t:principle:q", &viewer, &confirmation).await.unwrap_err().error;
    assert!(matches!(&error, Error::Unauthenticated(m) if m.contains("grant changed")), "{error:?}");
    assert_eq!(asked.load(Ordering::SeqCst), 1, "asked once the write found the token not as admitted");
    assert_eq!(held(store).await, (1, 1));

    // Revoked, it writes nothing either.
    assert!(store.revoke_token(&issued.stored.id).await.unwrap());
    let confirmation = confirmation_of(store, &issued.token, &asked);
    let error = link("t:principle:q", &caller, &confirmation).await.unwrap_err().error;
    assert!(matches!(&error, Error::Unauthenticated(m) if m == "the token was revoked"), "{error:?}");
    assert_eq!(asked.load(Ordering::SeqCst), 2);
    assert_eq!(held(store).await, (1, 1));

    // An update takes the change lock, and is asked about while its transaction opens: refused,
    // it changes nothing, and leaves no transaction open.
    let Value::Object(title) = json!({"title": "Not so"}) else { unreachable!() };
    let update = Change::Update { id: NodeId::parse("t:learning:l").unwrap(), patch: NodePatch(title) };
    let confirmation = confirmation_of(store, &issued.token, &asked);
    let actor = Actor { caller: caller.clone(), confirmation: Some(confirmation), ..editor() };
    let error = store.apply_as(vec![update], Some(&actor)).await.unwrap_err().error;
    assert!(matches!(&error, Error::Unauthenticated(m) if m == "the token was revoked"), "{error:?}");
    assert_eq!(asked.load(Ordering::SeqCst), 3);
    let learning = store.nodes(&[NodeId::parse("t:learning:l").unwrap()]).await.unwrap();
    assert_eq!(learning[0].title, "Learning");
    let open = "SHOW TRANSACTIONS YIELD currentQuery WHERE NOT currentQuery STARTS WITH 'SHOW' RETURN count(*) AS n";
    assert_eq!(number(&neo4j.raw, open).await, 0, "the refused update's transaction was rolled back");
}

/// An import that cannot get the change lock in time, because another import holds it, fails
/// and leaves that import's `(:Importing)` alone: without it, change sets read first would land
/// while the other import runs.
#[tokio::test]
async fn an_import_that_cannot_get_the_lock_leaves_the_running_imports_mark() {
    let Some(neo4j) = neo4j().await else { return };
    let uri = std::env::var("PVGRAPH_TEST_NEO4J").unwrap();
    // Replies awaited for a second at most, so the wait for the lock runs out soon.
    let options = pvgraph::store::Neo4jOptions { connect_timeout: Duration::from_secs(1), ..common::neo4j_options() };
    let impatient: pvgraph::store::Store = Arc::new(Neo4jStore::open(&uri, &options).await.unwrap());
    // What a running import holds: its committed mark, and the change lock.
    neo4j.raw.run(neo4rs::query("MERGE (:Importing {id: 1})")).await.unwrap();
    let running = hold_the_lock(&neo4j.raw).await;
    let file = r#"{"format": "pvgraph/1", "nodes": [{"id": "t:value:v", "title": "V"}], "relationships": []}"#;
    let error = pvgraph::seed::load(&impatient, file).await.expect_err("the lock is held");
    assert!(matches!(error, Error::Unavailable(_)), "{error:?}");
    let marks = "MATCH (i:Importing) RETURN count(i) AS n";
    assert_eq!(number(&neo4j.raw, marks).await, 1, "the running import's mark stays");
    running.rollback().await.unwrap();
    neo4j.raw.run(neo4rs::query("MATCH (i:Importing) DELETE i")).await.unwrap();
    let imported = neo4j.store.nodes(&[NodeId::parse("t:value:v").unwrap()]).await.unwrap();
    assert!(imported.is_empty(), "the failed import wrote nothing");
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

/// The number a query that returns one row with one column `n` answers, e.g. a count.
async fn number(raw: &neo4rs::Graph, query: &str) -> i64 {
    let mut rows = raw.execute(neo4rs::query(query)).await.unwrap();
    rows.next().await.unwrap().unwrap().get::<i64>("n").unwrap()
}

/// How many transactions are as `now` says (of `SHOW TRANSACTIONS`' `status` and
/// `activeLockCount`).
async fn transactions(raw: &neo4rs::Graph, now: &str) -> i64 {
    number(raw, &format!("SHOW TRANSACTIONS YIELD status, activeLockCount WHERE {now} RETURN count(*) AS n")).await
}

/// Polls `work` until a transaction is as `now` says (see `transactions`), then drops it: what a
/// request does when its client hangs up in the middle of a mutation.
async fn give_up<T>(raw: &neo4rs::Graph, now: &str, work: impl std::future::Future<Output = T>) {
    let mut given_up = std::pin::pin!(work);
    loop {
        if futures::poll!(given_up.as_mut()).is_ready() {
            panic!("the work ended before it could be given up");
        }
        if transactions(raw, now).await > 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
}

/// Checks `now` until it answers `want`, for a minute at most (a bound on a hang, not a speed).
async fn eventually<T: PartialEq + std::fmt::Debug, F: std::future::Future<Output = T>>(
    want: T,
    mut now: impl FnMut() -> F,
) {
    let mut got = now().await;
    for _ in 0..600 {
        if got == want {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        got = now().await;
    }
    assert_eq!(got, want);
}

/// Takes the change lock from a connection of the test's own, as the next change set would:
/// it must get it, not wait behind a transaction left open on an idle connection of the store's
/// pool. The minute is a bound on a hang, not a speed to meet.
async fn lock_is_let_go(raw: &neo4rs::Graph) {
    let lock = tokio::time::timeout(std::time::Duration::from_secs(60), hold_the_lock(raw)).await;
    lock.expect("the change lock was never let go").commit().await.unwrap();
}

#[tokio::test]
async fn a_change_set_whose_caller_goes_away_still_ends_and_frees_the_lock() {
    let Some(neo4j) = neo4j().await else { return };
    let store = &neo4j.store;
    // An update takes the change lock in its first statement, and holds it to its commit; it is
    // given up while it waits there for the learning, which the test holds.
    let actor = editor();
    let learning = NodeId::parse("t:learning:l").unwrap();
    let held_learning = hold_node(&neo4j.raw, "t:learning:l").await;
    let Value::Object(title) = json!({"title": "Updated"}) else { unreachable!() };
    let update = Change::Update { id: learning.clone(), patch: NodePatch(title) };
    give_up(&neo4j.raw, BLOCKED, store.apply_as(vec![update], Some(&actor))).await;
    held_learning.commit().await.unwrap();
    lock_is_let_go(&neo4j.raw).await;
    store.apply_as(vec![Change::Link(influence("t:principle:q"))], Some(&actor)).await.map_err(|f| f.error).unwrap();
    // The given-up change set runs to its end rather than stopping half-way (it may still be
    // waiting for the lock behind the next one): both get in, each with its audit entry.
    eventually((1, 2), || held(store)).await;
    let title = || async { store.nodes(std::slice::from_ref(&learning)).await.unwrap().pop().unwrap().title };
    eventually("Updated".to_owned(), title).await;
}

/// Holds the change lock in a transaction of the test's own, as a change set holds it, until it
/// is committed.
async fn hold_the_lock(raw: &neo4rs::Graph) -> neo4rs::Txn {
    let mut txn = raw.start_txn().await.unwrap();
    let lock = "MERGE (l:ChangeLock {id: 1}) SET l.changeSets = coalesce(l.changeSets, 0) + 1";
    txn.run(neo4rs::query(lock)).await.unwrap();
    txn
}

/// Holds the write lock of the node `id` in a transaction of the test's own, as a change set
/// holds the nodes it decides on, until it is committed.
async fn hold_node(raw: &neo4rs::Graph, id: &str) -> neo4rs::Txn {
    let mut txn = raw.start_txn().await.unwrap();
    txn.run(neo4rs::query("MATCH (n:Node {id: $id}) SET n.id = n.id").param("id", id)).await.unwrap();
    txn
}

/// A transaction that waits for a lock another holds, as `transactions` reads it.
const BLOCKED: &str = "status STARTS WITH 'Blocked'";

/// Waits until a transaction waits for a lock another holds (a minute at most: a bound on a
/// hang, not a speed to meet).
async fn blocked(raw: &neo4rs::Graph) {
    for _ in 0..6_000 {
        if transactions(raw, BLOCKED).await > 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("no transaction ever waited for a lock");
}

/// Records the influence on `t:principle:p` in a task of its own.
fn record_in_a_task(store: &Neo4jStore) -> tokio::task::JoinHandle<Result<Vec<Applied>, Failed>> {
    record_on_in_a_task(store, "t:principle:p")
}

/// Records the influence on `to` in a task of its own.
fn record_on_in_a_task(store: &Neo4jStore, to: &str) -> tokio::task::JoinHandle<Result<Vec<Applied>, Failed>> {
    let (store, changes) = (store.clone(), vec![Change::Link(influence(to))]);
    tokio::spawn(async move { store.apply_as(changes, Some(&editor())).await })
}

/// Waits until change sets have sent `count` statements since `before` (a minute at most: a
/// bound on a hang, not a speed to meet).
async fn sent(store: &Neo4jStore, before: u64, count: u64) {
    for _ in 0..6_000 {
        if store.change_statements() - before >= count {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("change sets sent {} statements, not {count}", store.change_statements() - before);
}

#[tokio::test]
async fn two_change_sets_that_race_to_the_same_influence_one_is_written_the_other_refused() {
    let Some(neo4j) = neo4j().await else { return };
    let store = &neo4j.store;
    // The learning's lock is held while both change sets send their statement on the
    // supposition (the influence is not there yet, for each), which waits for it; then it is let
    // go, and they race.
    let lock = hold_node(&neo4j.raw, "t:learning:l").await;
    let before = store.change_statements();
    let racers: Vec<_> = (0..2).map(|_| record_in_a_task(store)).collect();
    sent(store, before, 2).await;
    lock.commit().await.unwrap();
    let mut outcomes = Vec::new();
    for racer in racers {
        outcomes.push(racer.await.unwrap());
    }
    assert_eq!(outcomes.iter().filter(|o| o.is_ok()).count(), 1, "{outcomes:?}");
    let refused = outcomes.into_iter().find_map(Result::err).unwrap();
    assert!(matches!(refused.error, Error::Conflict(_)), "{refused:?}");
    // The one that lost found the influence there once it had the lock, wrote nothing, and was
    // refused on what it read, checked by one more statement.
    assert_eq!(store.change_statements() - before, 3);
    assert_eq!(held(store).await, (1, 1));
}

#[tokio::test]
async fn a_change_set_whose_reads_changed_before_it_got_the_lock_runs_again() {
    let Some(neo4j) = neo4j().await else { return };
    let store = &neo4j.store;
    let mut lock = hold_node(&neo4j.raw, "t:learning:l").await;
    let before = store.change_statements();
    // Without a member to see the graph as, no supposition: the change set is read first.
    let racer = {
        let store = store.clone();
        tokio::spawn(async move { store.apply(vec![Change::Link(influence("t:principle:p"))]).await })
    };
    // Once it has read the learning, the lock's holder changes it, as an update would.
    sent(store, before, 2).await;
    let update = "MATCH (n:Node {id: 't:learning:l'}) SET n.title = 'Changed meanwhile', n.updatedAt = $now";
    let now = pvgraph::domain::timestamp(chrono::Utc::now());
    lock.run(neo4rs::query(update).param("now", now)).await.unwrap();
    lock.commit().await.unwrap();
    racer.await.unwrap().map_err(|f| f.error).unwrap();
    assert_eq!(store.change_statements() - before, 4, "read, found changed; read again, written");
    assert_eq!(held(store).await, (1, 0), "no actor, no audit entry");
    let learning = store.nodes(&[NodeId::parse("t:learning:l").unwrap()]).await.unwrap().pop().unwrap();
    assert_eq!(learning.title, "Changed meanwhile");
}

#[tokio::test]
async fn a_change_set_on_a_supposition_waits_for_the_nodes_it_names_and_decides_on_them_as_they_then_are() {
    let Some(neo4j) = neo4j().await else { return };
    let store = &neo4j.store;
    let mut lock = hold_node(&neo4j.raw, "t:learning:l").await;
    let before = store.change_statements();
    let racer = record_in_a_task(store);
    sent(store, before, 1).await;
    blocked(&neo4j.raw).await;
    // While it waits, the learning is changed where the rules do not look.
    let update = "MATCH (n:Node {id: 't:learning:l'}) SET n.title = 'Changed meanwhile'";
    lock.run(neo4rs::query(update)).await.unwrap();
    lock.commit().await.unwrap();
    racer.await.unwrap().map_err(|f| f.error).unwrap();
    assert_eq!(store.change_statements() - before, 1, "written on the supposition");
    assert_eq!(held(store).await, (1, 1));

    let mut lock = hold_node(&neo4j.raw, "t:learning:l").await;
    let before = store.change_statements();
    let racer = record_on_in_a_task(store, "t:principle:q");
    sent(store, before, 1).await;
    blocked(&neo4j.raw).await;
    // This time, where they do: the principle goes.
    lock.run(neo4rs::query("MATCH (n:Node {id: 't:principle:q'}) DETACH DELETE n")).await.unwrap();
    lock.commit().await.unwrap();
    let refused = racer.await.unwrap().expect_err("the principle is gone");
    assert!(matches!(refused.error, Error::NotFound(_)), "{refused:?}");
    assert_eq!(store.change_statements() - before, 2, "not as supposed; refused on what it read, checked");
    assert_eq!(held(store).await, (1, 1));
}

#[tokio::test]
async fn an_import_whose_caller_goes_away_still_ends_and_frees_the_lock() {
    let Some(neo4j) = neo4j().await else { return };
    let store = &neo4j.store;
    // An import takes the lock in its first statement, and holds it to its end.
    let (batches, received) = tokio::sync::mpsc::channel(4);
    give_up(&neo4j.raw, "activeLockCount > 0", store.import(received)).await;
    // The file's reader goes on to the end of the file, as it runs on a thread of its own.
    let imported = node(json!({"id": "t:principle:imported", "title": "Imported", "statement": "in"}));
    let delivered = batches.send(Ok(vec![Change::Create(imported)])).await;
    drop(batches);
    lock_is_let_go(&neo4j.raw).await;
    // The import ran to its end: what it was sent is in.
    delivered.expect("the import stopped reading");
    let id = NodeId::parse("t:principle:imported").unwrap();
    eventually(1, || async { store.nodes(std::slice::from_ref(&id)).await.unwrap().len() }).await;
}

#[tokio::test]
async fn a_change_set_read_first_does_not_wait_for_the_change_lock() {
    let Some(neo4j) = neo4j().await else { return };
    let store = &neo4j.store;
    // A long update elsewhere holds the change lock, and another node's lock.
    let mut lock = hold_the_lock(&neo4j.raw).await;
    lock.run(neo4rs::query("MATCH (n:Node {id: 't:principle:q'}) SET n.title = 'Elsewhere'")).await.unwrap();
    // Recording an influence on other nodes gets through meanwhile (the minute bounds a hang).
    let recorded = tokio::time::timeout(std::time::Duration::from_secs(60), record_in_a_task(store)).await;
    recorded.expect("the influence waited for the change lock").unwrap().map_err(|f| f.error).unwrap();
    assert_eq!(held(store).await, (1, 1));
    lock.commit().await.unwrap();
}

#[tokio::test]
async fn a_change_set_that_takes_the_change_lock_waits_for_the_nodes_it_reads() {
    let Some(neo4j) = neo4j().await else { return };
    let store = &neo4j.store;
    // A change set read first is in its last statement: it has locked the learning and the
    // principle and written the influence, and has not committed yet.
    let mut racer = hold_node(&neo4j.raw, "t:learning:l").await;
    let write = "MATCH (a:Node {id: 't:learning:l'}), (b:Node {id: 't:principle:p'}) SET b.id = b.id \
                 CREATE (a)-[:INFLUENCED {assertion: 'INFERRED', props: $props, on: '2024-03-05', sources: []}]->(b)";
    let props = influence("t:principle:p").stored_properties();
    racer.run(neo4rs::query(write).param("props", props)).await.unwrap();
    // An update with the same influence takes the change lock, and must not decide on the
    // influence before that change set ends: it would find it missing, and write it twice.
    let Value::Object(title) = json!({"title": "Updated"}) else { unreachable!() };
    let changes = vec![
        Change::Update { id: NodeId::parse("t:learning:l").unwrap(), patch: NodePatch(title) },
        Change::Link(influence("t:principle:p")),
    ];
    let before = store.change_statements();
    let updater = {
        let store = store.clone();
        tokio::spawn(async move { store.apply_as(changes, Some(&editor())).await })
    };
    sent(store, before, 1).await;
    blocked(&neo4j.raw).await;
    racer.commit().await.unwrap();
    let refused = updater.await.unwrap().expect_err("the influence is there already");
    assert!(matches!(refused.error, Error::Conflict(_)), "{refused:?}");
    assert_eq!(held(store).await.0, 1, "the influence is written once");
    let learning = store.nodes(&[NodeId::parse("t:learning:l").unwrap()]).await.unwrap().pop().unwrap();
    assert_eq!(learning.title, "Learning", "the refused change set's update is not kept");
}

#[tokio::test]
async fn many_change_sets_at_once_on_few_nodes_write_each_influence_once() {
    let Some(neo4j) = neo4j().await else { return };
    let store = &neo4j.store;
    let mut extra = Vec::new();
    for i in 0..3 {
        extra.push(Change::Create(node(json!({"id": format!("t:learning:m{i}"), "title": format!("Learning {i}"),
            "statement": "we learnt", "kind": "MINDSET", "capturedOn": "2024-03-01"}))));
        extra.push(Change::Create(node(json!({"id": format!("t:principle:r{i}"), "title": format!("Principle {i}"),
            "statement": "do it"}))));
    }
    store.apply(extra).await.map_err(|f| f.error).unwrap();
    let pairs: Vec<(String, String)> =
        (0..3).flat_map(|l| (0..3).map(move |p| (format!("t:learning:m{l}"), format!("t:principle:r{p}")))).collect();
    let audited = store.audit_count("t").await.unwrap();
    // Six writers go over every pair, each from its own place; every other change set also
    // updates the learning, and so takes the change lock, where the others read first.
    let writers: Vec<_> = (0..6)
        .map(|w| {
            let (store, pairs) = (store.clone(), pairs.clone());
            tokio::spawn(async move {
                let mut outcomes = Vec::new();
                for k in 0..pairs.len() {
                    let (from, to) = &pairs[(k + w * 2) % pairs.len()];
                    let mut changes = vec![Change::Link(influence_from(from, to))];
                    if (k + w) % 2 == 0 {
                        let Value::Object(patch) = json!({"title": format!("Learning by {w}")}) else { unreachable!() };
                        changes.insert(0, Change::Update { id: NodeId::parse(from).unwrap(), patch: NodePatch(patch) });
                    }
                    outcomes.push(store.apply_as(changes, Some(&editor())).await.map_err(|f| f.error));
                }
                outcomes
            })
        })
        .collect();
    let mut written = 0;
    for writer in writers {
        for outcome in writer.await.unwrap() {
            match outcome {
                Ok(_) => written += 1,
                Err(Error::Conflict(_)) => {}
                Err(other) => panic!("only conflicts may be refused: {other:?}"),
            }
        }
    }
    assert_eq!(written, pairs.len(), "each pair is written by exactly one change set");
    for (from, _) in pairs.iter().step_by(3) {
        let influences = store.edges(&[NodeId::parse(from).unwrap()], Direction::Out).await.unwrap();
        let mut ends: Vec<String> = influences.iter().map(|e| e.to.to_string()).collect();
        ends.sort();
        assert_eq!(ends, ["t:principle:r0", "t:principle:r1", "t:principle:r2"], "{from}");
    }
    assert_eq!(store.audit_count("t").await.unwrap() - audited, written as u64, "one audit entry a change set written");
}

#[tokio::test]
async fn nothing_is_recorded_while_an_import_into_an_empty_store_may_still_delete_everything() {
    let Some(neo4j) = neo4j().await else { return };
    let store = &neo4j.store;
    neo4j.raw.run(neo4rs::query("MATCH (n) WHERE NOT n:ChangeLock DETACH DELETE n")).await.unwrap();
    // The import commits its first batch, the two nodes of an influence, and goes on reading.
    let (batches, received) = tokio::sync::mpsc::channel(4);
    let import = {
        let store = store.clone();
        tokio::spawn(async move { store.import(received).await })
    };
    let first = [
        json!({"id": "t:organisation:t", "title": "Test org"}),
        json!({"id": "t:principle:p", "title": "Principle", "statement": "do good"}),
        json!({"id": "t:learning:l", "title": "Learning", "statement": "we learnt", "kind": "MINDSET",
               "capturedOn": "2024-03-01"}),
    ];
    batches.send(Ok(first.into_iter().map(|r| Change::Create(node(r))).collect())).await.unwrap();
    let learning = NodeId::parse("t:learning:l").unwrap();
    eventually(1, || async { store.nodes(std::slice::from_ref(&learning)).await.unwrap().len() }).await;
    // An influence between them waits for the import's end: it may not land, since the import
    // may yet fail and take everything away.
    let racer = record_in_a_task(store);
    blocked(&neo4j.raw).await;
    batches.send(Err(Error::invalid("file", "the file ends badly"))).await.unwrap();
    drop(batches);
    assert!(import.await.unwrap().is_err());
    let refused = racer.await.unwrap().expect_err("the learning went with the import");
    assert!(matches!(refused.error, Error::NotFound(_)), "{refused:?}");
    assert!(store.is_empty().await.unwrap());
}

#[tokio::test]
async fn a_change_set_read_first_waits_for_an_import_into_a_graph() {
    let Some(neo4j) = neo4j().await else { return };
    let store = &neo4j.store;
    // The import, one transaction beside the graph, has read its first batch and goes on reading.
    let (batches, received) = tokio::sync::mpsc::channel(4);
    let import = {
        let store = store.clone();
        tokio::spawn(async move { store.import(received).await })
    };
    let imported = node(json!({"id": "t:principle:imported", "title": "Imported", "statement": "in"}));
    batches.send(Ok(vec![Change::Create(imported)])).await.unwrap();
    // Once the import says it runs (it holds the change lock by then), an influence recorded
    // meanwhile waits for it, rather than lock nodes the import may need.
    eventually(1, || number(&neo4j.raw, "MATCH (i:Importing) RETURN count(i) AS n")).await;
    let racer = record_in_a_task(store);
    blocked(&neo4j.raw).await;
    assert!(!racer.is_finished());
    drop(batches);
    assert_eq!(import.await.unwrap().map_err(|f| f.error).unwrap(), 1);
    racer.await.unwrap().map_err(|f| f.error).unwrap();
    assert_eq!(held(store).await.0, 1);
}

#[tokio::test]
async fn a_change_set_read_first_creating_an_id_another_is_creating_waits_for_it_and_is_refused() {
    let Some(neo4j) = neo4j().await else { return };
    let store = &neo4j.store;
    // Another change set is writing the organisation `u` and has not committed: nobody sees it
    // yet, but its id is taken in the uniqueness index.
    let mut other = neo4j.raw.start_txn().await.unwrap();
    let create = "MATCH (t:Node {id: 't:organisation:t'}) \
                  CREATE (n:Node:Organisation) SET n = t{.*, id: 'u:organisation:u', organisation: 'u'}";
    other.run(neo4rs::query(create)).await.unwrap();
    let before = store.change_statements();
    let creator = {
        let store = store.clone();
        let organisation = Change::Create(node(json!({"id": "u:organisation:u", "title": "Another org"})));
        tokio::spawn(async move { store.apply(vec![organisation]).await })
    };
    // Its read of the id (without the change lock, without node locks) waits for the other.
    blocked(&neo4j.raw).await;
    other.commit().await.unwrap();
    // It then reads the id taken, and the rules refuse it in their own words; the last statement
    // checks that the id is still taken, and writes nothing.
    let refused = creator.await.unwrap().expect_err("the id is taken");
    assert!(matches!(&refused.error, Error::Conflict(m) if m.contains("u:organisation:u")), "{refused:?}");
    assert_eq!(store.change_statements() - before, 2);
}
