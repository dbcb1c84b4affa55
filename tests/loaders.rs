//! Nested queries cost a fixed number of store calls, however many results
//! they touch: the request's DataLoaders batch each level into one call.
//!
//! `Counting` is instrumentation, not a mock: it forwards every call to the
//! real SQLite store and only notes which method was called with how many ids.

mod common;

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use common::temp_dir;
use pvgraph::domain::{Actor, Applied, Audience, Caller, Change, Edge, Node, NodeId, NodeKind, Result};
use pvgraph::store::{
    self, ApiToken, AuditEntry, AuditQuery, Direction, Failed, GraphStore, ListQuery, NodeFilter, PathRequest, Paths,
    SearchHit, SearchRequest, Store, StoreLocation, Trace, TraceRequest,
};
use serde_json::{Value, json};

/// One store call: the method and how many ids it was given (0 when it takes none).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Call {
    method: &'static str,
    ids: usize,
}

struct Counting {
    inner: Store,
    calls: Mutex<Vec<Call>>,
}

impl Counting {
    fn note(&self, method: &'static str, ids: usize) {
        self.calls.lock().unwrap().push(Call { method, ids });
    }
}

#[async_trait]
impl GraphStore for Counting {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }

    async fn ping(&self) -> Result<()> {
        self.note("ping", 0);
        self.inner.ping().await
    }

    async fn nodes(&self, ids: &[NodeId]) -> Result<Vec<Node>> {
        self.note("nodes", ids.len());
        self.inner.nodes(ids).await
    }

    async fn list(&self, query: &ListQuery) -> Result<Vec<Node>> {
        self.note("list", 0);
        self.inner.list(query).await
    }

    async fn count(&self, kind: NodeKind, filter: &NodeFilter) -> Result<u64> {
        self.note("count", 0);
        self.inner.count(kind, filter).await
    }

    async fn edges(&self, ids: &[NodeId], direction: Direction) -> Result<Vec<Edge>> {
        self.note("edges", ids.len());
        self.inner.edges(ids, direction).await
    }

    async fn visible_edges(&self, ids: &[NodeId], direction: Direction, audience: &Audience) -> Result<Vec<Edge>> {
        self.note("edges", ids.len());
        self.inner.visible_edges(ids, direction, audience).await
    }

    async fn apply_as(&self, changes: Vec<Change>, actor: Option<&Actor>) -> Result<Vec<Applied>, Failed> {
        self.note("apply", 0);
        self.inner.apply_as(changes, actor).await
    }

    async fn save_token(&self, token: &ApiToken) -> Result<()> {
        self.note("save_token", 0);
        self.inner.save_token(token).await
    }

    async fn revoke_token(&self, id: &str) -> Result<bool> {
        self.note("revoke_token", 0);
        self.inner.revoke_token(id).await
    }

    async fn tokens(&self) -> Result<Vec<ApiToken>> {
        self.note("tokens", 0);
        self.inner.tokens().await
    }

    async fn token_by_hash(&self, hash: &str) -> Result<Option<ApiToken>> {
        self.note("token_by_hash", 0);
        self.inner.token_by_hash(hash).await
    }

    async fn audit_log(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>> {
        self.note("audit_log", 0);
        self.inner.audit_log(query).await
    }

    async fn audit_count(&self, organisation: &str) -> Result<u64> {
        self.note("audit_count", 0);
        self.inner.audit_count(organisation).await
    }

    async fn is_empty(&self) -> Result<bool> {
        self.note("is_empty", 0);
        self.inner.is_empty().await
    }

    async fn dump(&self) -> Result<(Vec<Node>, Vec<Edge>)> {
        self.note("dump", 0);
        self.inner.dump().await
    }

    async fn trace(&self, request: &TraceRequest) -> Result<Trace> {
        self.note("trace", 0);
        self.inner.trace(request).await
    }

    async fn paths(&self, request: &PathRequest) -> Result<Paths> {
        self.note("paths", 0);
        self.inner.paths(request).await
    }

    async fn search(&self, request: &SearchRequest) -> Result<Vec<SearchHit>> {
        self.note("search", 0);
        self.inner.search(request).await
    }

    async fn influences_across(&self, from: Option<&str>, to: Option<&str>, limit: usize) -> Result<Vec<Edge>> {
        self.note("influences_across", 0);
        self.inner.influences_across(from, to, limit).await
    }

    async fn embedding_pairs(&self, organisation: Option<&str>) -> Result<Vec<(Node, Node)>> {
        self.note("embedding_pairs", 0);
        self.inner.embedding_pairs(organisation).await
    }
}

/// The real schema over the seeded SQLite store, counted.
struct Harness {
    counting: Arc<Counting>,
    store: Store,
    schema: pvgraph::graphql::PvSchema,
    _dir: tempfile::TempDir,
}

impl Harness {
    async fn seeded() -> Harness {
        let dir = temp_dir();
        let inner = store::open(&StoreLocation::Sqlite(dir.path().join("pvgraph.db"))).await.expect("the store opens");
        pvgraph::seed::load(&inner, pvgraph::seed::KING_COUNTY).await.expect("the seed loads");
        let counting = Arc::new(Counting { inner, calls: Mutex::new(Vec::new()) });
        let store: Store = counting.clone();
        let schema = pvgraph::graphql::schema(store.clone(), pvgraph::graphql::ChangeFeed::default());
        Harness { counting, store, schema, _dir: dir }
    }

    /// Runs a query in-process and returns its data and the store calls it made.
    async fn run(&self, query: &str) -> (Value, Vec<Call>) {
        self.counting.calls.lock().unwrap().clear();
        let request = pvgraph::graphql::prepare(async_graphql::Request::new(query), &self.store, Caller::Anonymous);
        let response = self.schema.execute(request).await;
        assert!(response.errors.is_empty(), "{query}: {:?}", response.errors);
        let calls = self.counting.calls.lock().unwrap().clone();
        (response.data.into_json().expect("data is JSON"), calls)
    }
}

fn count(calls: &[Call], method: &str) -> usize {
    calls.iter().filter(|c| c.method == method).count()
}

fn methods(calls: &[Call]) -> Vec<&'static str> {
    calls.iter().map(|c| c.method).collect()
}

/// Every string found under `key` anywhere in `value`.
fn all_under(value: &Value, key: &str, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                if k == key
                    && let Some(text) = v.as_str()
                {
                    out.push(text.to_owned());
                }
                all_under(v, key, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| all_under(v, key, out)),
        _ => {}
    }
}

/// The query of the brief: two branches, five relationship fields deep at most.
fn branched(n: usize) -> String {
    format!(
        "{{ principles(first: {n}) {{ edges {{ node {{ id \
           upholds {{ upheldBy {{ title }} }} \
           guides {{ produced {{ influences {{ edges {{ node {{ title }} }} }} }} }} \
         }} }} }} }}"
    )
}

/// How many relationship fields the branched query follows.
const RELATIONSHIP_FIELDS: usize = 5;

#[tokio::test]
async fn a_branched_query_makes_as_few_calls_for_fourteen_principles_as_for_two() {
    let harness = Harness::seeded().await;
    let (two, two_calls) = harness.run(&branched(2)).await;
    let (fourteen, fourteen_calls) = harness.run(&branched(14)).await;

    // The query really went all the way down, for both page sizes.
    assert_eq!(two["principles"]["edges"].as_array().unwrap().len(), 2);
    assert_eq!(fourteen["principles"]["edges"].as_array().unwrap().len(), 14);
    for (data, n) in [(&two, 2), (&fourteen, 14)] {
        let mut titles = Vec::new();
        all_under(&data["principles"]["edges"][0]["node"]["guides"], "title", &mut titles);
        assert!(!titles.is_empty(), "N={n}: the first principle's guides reach influences");
    }

    // One list, then about one edges call and one nodes call per relationship field,
    // whatever the page size. The two branches run side by side and may or may not
    // share a batch (the loaders wait 1 ms to gather keys), so the exact number can
    // differ by a call or two between runs; it is bounded, never proportional to N.
    let bound = RELATIONSHIP_FIELDS * 2 + 2;
    for (calls, n) in [(&two_calls, 2), (&fourteen_calls, 14)] {
        assert_eq!(count(calls, "list"), 1, "N={n}: {calls:?}");
        assert_eq!(count(calls, "count"), 0, "N={n}: totalCount was not asked for");
        assert!(
            count(calls, "edges") >= RELATIONSHIP_FIELDS,
            "N={n}: every relationship field was followed: {calls:?}"
        );
        assert!(calls.len() <= bound, "N={n}: {} calls > {bound}: {calls:?}", calls.len());
    }
    // The first round of edges asks about all fourteen principles at once.
    let first_edges: Vec<usize> =
        fourteen_calls.iter().filter(|c| c.method == "edges").map(|c| c.ids).take(2).collect();
    assert_eq!(first_edges, [14, 14], "{fourteen_calls:?}");
}

/// With one branch, each level waits for the whole previous level, so the calls are
/// exactly one per level, and the same for any page size.
#[tokio::test]
async fn a_chain_query_makes_exactly_the_same_calls_for_two_principles_as_for_fourteen() {
    let harness = Harness::seeded().await;
    let chain = |n: usize| {
        format!(
            "{{ principles(first: {n}) {{ nodes {{ id guides {{ produced {{ influences {{ edges {{ node {{ id }} }} }} }} }} }} }} }}"
        )
    };
    let (two, two_calls) = harness.run(&chain(2)).await;
    let (fourteen, fourteen_calls) = harness.run(&chain(14)).await;
    let expected = ["list", "edges", "nodes", "edges", "nodes", "edges", "nodes"];
    assert_eq!(methods(&two_calls), expected, "{two_calls:?}");
    assert_eq!(methods(&fourteen_calls), expected, "{fourteen_calls:?}");

    // Each call took a whole level of ids.
    assert_eq!(fourteen_calls[1].ids, 14);
    let mut reached = Vec::new();
    all_under(&fourteen, "id", &mut reached);
    let mut reached_two = Vec::new();
    all_under(&two, "id", &mut reached_two);
    assert!(reached.len() > reached_two.len() && reached_two.len() > 2, "{} vs {}", reached.len(), reached_two.len());
}

#[tokio::test]
async fn every_relationship_field_of_every_learning_costs_one_round() {
    let harness = Harness::seeded().await;
    let query = |n: usize| {
        format!(
            "{{ learnings(first: {n}) {{ totalCount nodes {{ id organisation {{ id }} producedBy {{ id }} \
               influences {{ totalCount edges {{ target {{ id }} learning {{ id }} sources {{ id }} }} }} \
               influencedBy {{ totalCount }} cites {{ source {{ id }} }} links {{ kind from {{ id }} to {{ id }} }} }} }} }}"
        )
    };
    let (_, few) = harness.run(&query(3)).await;
    let (data, all) = harness.run(&query(15)).await;
    assert_eq!(data["learnings"]["nodes"].as_array().unwrap().len(), 15);
    for calls in [&few, &all] {
        assert_eq!(count(calls, "list"), 1, "{calls:?}");
        assert_eq!(count(calls, "count"), 1, "totalCount is one call: {calls:?}");
        // Edges both ways and the nodes at their ends, batched across every learning.
        // (`links` asks for incoming edges only once its outgoing ones have arrived, and
        // fields at one depth may split a batch, so the number is bounded, not fixed.)
        assert!(calls.len() <= 12, "{} calls: {calls:?}", calls.len());
    }
    // The first round of edges asks about all fifteen learnings at once, both ways.
    let first_edges: Vec<usize> = all.iter().filter(|c| c.method == "edges").map(|c| c.ids).take(2).collect();
    assert_eq!(first_edges, [15, 15], "{all:?}");
}

#[tokio::test]
async fn nodes_by_ids_is_one_call_and_total_count_is_only_counted_when_asked() {
    let harness = Harness::seeded().await;
    let (listed, _) = harness.run("{ principles(first: 14) { nodes { id } } }").await;
    let ids: Vec<String> = listed["principles"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap().to_owned())
        .collect();
    let query = format!("{{ nodes(ids: {}) {{ id title }} }}", json!(ids));
    let (data, calls) = harness.run(&query).await;
    assert_eq!(data["nodes"].as_array().unwrap().len(), 14);
    assert_eq!(calls, [Call { method: "nodes", ids: 14 }]);

    let (_, calls) = harness.run("{ principles(first: 5) { nodes { id } } }").await;
    assert_eq!(methods(&calls), ["list"]);
    let (data, calls) = harness.run("{ principles(first: 5) { totalCount nodes { id } } }").await;
    assert_eq!(data["principles"]["totalCount"], 14);
    assert_eq!(count(&calls, "count"), 1);
    assert_eq!(count(&calls, "list"), 1);
}
