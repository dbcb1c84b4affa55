//! Micro-benchmarks of the embedded store's hot paths, for a developer's loop:
//! `cargo bench --bench store`. A generated graph of 100 organisations
//! (about 10,000 nodes and 27,000 relationships) in a temporary SQLite file.
//! Walks repeated on one store are answered from what the first one kept in
//! memory; the same walks on a second store of the file that keeps nothing
//! time SQLite's part ("from the file").

mod support;

use criterion::{Criterion, criterion_group, criterion_main};
use pvgraph::domain::{NodeId, NodeKind, RelationshipKind};
use pvgraph::store::{
    self, Direction, ListQuery, NodeFilter, OrderField, PathRequest, Store, TraceDirection, TraceRequest,
};

fn id(text: &str) -> NodeId {
    NodeId::parse(text).expect("a generated id")
}

fn hot_paths(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = support::generated(&runtime, dir.path());
    let learnings: Vec<NodeId> = (0..50).map(|n| id(&format!("org{}:learning:learning-{}", n % 100, n % 34))).collect();

    c.bench_function("nodes by 50 ids", |b| {
        b.to_async(&runtime).iter(|| async { store.nodes(&learnings).await.unwrap() })
    });
    c.bench_function("edges of 50 nodes, outgoing", |b| {
        b.to_async(&runtime).iter(|| async { store.edges(&learnings, Direction::Out).await.unwrap() })
    });
    let page = ListQuery {
        kind: NodeKind::Learning,
        filter: NodeFilter { organisations: vec!["org5".into()], ..NodeFilter::default() },
        order: OrderField::Title,
        descending: false,
        after: None,
        before: None,
        limit: 51,
        from_end: false,
    };
    c.bench_function("a page of 50 learnings of one organisation", |b| {
        b.to_async(&runtime).iter(|| async { store.list(&page).await.unwrap() })
    });
    let trace = TraceRequest {
        from: id("org5:learning:learning-3"),
        direction: TraceDirection::Downstream,
        max_depth: 6,
        via: vec![],
        kinds: vec![],
        as_of: None,
        audience: Default::default(),
        max_nodes: pvgraph::store::traverse::MAX_TRACE_NODES,
    };
    c.bench_function("trace depth 6 downstream from a learning", |b| {
        b.to_async(&runtime).iter(|| async { store.trace(&trace).await.unwrap() })
    });
    let paths = PathRequest {
        from: id("org5:learning:learning-3"),
        to: id("org5:principle:principle-2"),
        direction: TraceDirection::Both,
        max_depth: 4,
        via: vec![RelationshipKind::Influenced, RelationshipKind::Produced, RelationshipKind::GuidedBy],
        first: 10,
        audience: Default::default(),
    };
    c.bench_function("paths depth 4 between a learning and a principle", |b| {
        b.to_async(&runtime).iter(|| async { store.paths(&paths).await.unwrap() })
    });
    drop(store);
    let path = dir.path().join("bench.db");
    let file: Store = std::sync::Arc::new(store::sqlite::SqliteStore::open_keeping(&path, 0).unwrap());
    c.bench_function("trace depth 6 downstream from a learning, from the file", |b| {
        b.to_async(&runtime).iter(|| async { file.trace(&trace).await.unwrap() })
    });
    c.bench_function("paths depth 4 between a learning and a principle, from the file", |b| {
        b.to_async(&runtime).iter(|| async { file.paths(&paths).await.unwrap() })
    });
}

criterion_group!(benches, hot_paths);
criterion_main!(benches);
