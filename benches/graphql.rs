//! The GraphQL layer's own cost, without HTTP: `cargo bench --bench graphql`.
//! The side-by-side run's Q1, Q3 and Q4 (`scripts/bench-compare`) executed in
//! the process as the server executes them (`Api::run_as`: the request's
//! loaders and batching, the API's document cache and limits), as an editor
//! of `org0`, on a generated graph of 100 organisations in a temporary SQLite
//! file; then the answer written as JSON. Asked again and again, the store
//! answers from what it kept in memory, as it does for the load tool, so what
//! is timed is parsing (from the cache), validation, execution and the JSON:
//! what a request costs above what any HTTP server costs (the floor's part).
//!
//! `PVGRAPH_BENCH_DB=path/to/file.db` runs the same requests on an existing
//! SQLite file instead (the side-by-side run's own graph of 100,000 nodes, say,
//! whose trace and paths are larger); it is only read.

use std::sync::Arc;

mod support;

use async_graphql::{Request, Variables};
use criterion::{Criterion, criterion_group, criterion_main};
use pvgraph::domain::{Caller, Member, Role};
use pvgraph::graphql::{Api, ChangeFeed};
use pvgraph::store::{self, Store, StoreLocation};

/// The server's allocator (`src/main.rs`), so that what is timed is what it pays.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const Q1: &str = "query($id: ID!) { node(id: $id) { id ... on Experiment { title guidedBy { id title } \
                  addresses { id title } produced { id title } } } }";
const Q3: &str = "query($id: ID!) { trace(from: $id, direction: DOWNSTREAM, maxDepth: 4) { nodes { depth node { id \
                  title } } edges { kind fromId toId } } }";
const Q4: &str =
    "query($from: ID!, $to: ID!) { paths(from: $from, to: $to, maxDepth: 6) { length nodes { id title } } }";

fn graph(runtime: &tokio::runtime::Runtime, dir: &std::path::Path) -> Store {
    if let Some(path) = std::env::var_os("PVGRAPH_BENCH_DB") {
        return runtime.block_on(store::open(&StoreLocation::Sqlite(path.into()))).unwrap();
    }
    support::generated(runtime, dir)
}

/// One request as the server runs it, answered as JSON.
async fn ask(api: &Api, store: &Store, caller: &Caller, query: &str, variables: &serde_json::Value) -> Vec<u8> {
    let request = Request::new(query).variables(Variables::from_json(variables.clone()));
    let (response, _) = api.run_as(request, store, caller.clone(), None, None).await;
    assert!(response.errors.is_empty(), "{:?}", response.errors);
    serde_json::to_vec(&response).unwrap()
}

fn requests(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = graph(&runtime, dir.path());
    let api = Arc::new(pvgraph::graphql::api(store.clone(), ChangeFeed::default()));
    let caller =
        Caller::Member(Member { organisation: "org0".into(), role: Role::Editor, subject: "bench:editor".into() });

    let q1 = serde_json::json!({ "id": "org5:experiment:experiment-0" });
    let q3 = serde_json::json!({ "id": "org5:learning:learning-3" });
    // Q4's target is the deepest node of Q3's trace, as the side-by-side run picks it.
    let trace: serde_json::Value =
        serde_json::from_slice(&runtime.block_on(ask(&api, &store, &caller, Q3, &q3))).unwrap();
    let deepest = trace["data"]["trace"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .max_by_key(|n| n["depth"].as_u64())
        .map(|n| n["node"]["id"].clone())
        .unwrap();
    let q4 = serde_json::json!({ "from": "org5:learning:learning-3", "to": deepest });

    for (name, query, variables) in
        [("Q1 a node with three lists", Q1, &q1), ("Q3 a depth-4 trace", Q3, &q3), ("Q4 paths", Q4, &q4)]
    {
        c.bench_function(name, |b| b.to_async(&runtime).iter(|| ask(&api, &store, &caller, query, variables)));
    }
}

criterion_group!(benches, requests);
criterion_main!(benches);
