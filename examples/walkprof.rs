// Throwaway: times the store's trace and paths for Q3/Q4 on a copy of the bench graph.
use pvgraph::domain::NodeId;
use pvgraph::store::{self, PathRequest, StoreLocation, TraceDirection, TraceRequest};
use std::time::Instant;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let path = std::env::args().nth(1).unwrap();
    let n: usize = std::env::args().nth(2).map(|s| s.parse().unwrap()).unwrap_or(5000);
    let store = store::open(&StoreLocation::Sqlite(path.into())).await.unwrap();
    let id = |s: &str| NodeId::parse(s).unwrap();
    let trace = TraceRequest {
        from: id("org5:learning:learning-3"),
        direction: TraceDirection::Downstream,
        max_depth: 4,
        via: vec![],
        kinds: vec![],
        as_of: None,
        audience: pvgraph::domain::Audience::Member("org0".into()),
        max_nodes: pvgraph::store::traverse::MAX_TRACE_NODES,
    };
    let paths = PathRequest {
        from: id("org5:learning:learning-3"),
        to: id("org5:value:value-0"),
        direction: TraceDirection::Downstream,
        max_depth: 6,
        via: vec![],
        first: 10,
        audience: pvgraph::domain::Audience::Member("org0".into()),
    };
    for round in 0..3 {
        let t = Instant::now();
        let mut k = 0;
        for _ in 0..n {
            k += store.trace(&trace).await.unwrap().nodes.len();
        }
        let tr = t.elapsed().as_secs_f64() / n as f64 * 1e6;
        let t = Instant::now();
        let mut p = 0;
        for _ in 0..n {
            p += store.paths(&paths).await.unwrap().paths.len();
        }
        let pa = t.elapsed().as_secs_f64() / n as f64 * 1e6;
        println!("round {round}: trace {tr:.1} us ({} nodes), paths {pa:.1} us ({} paths)", k / n, p / n);
    }
}
