//! What the benchmarks share.

use pvgraph::store::{self, Store, StoreLocation};

/// A generated graph of 100 organisations (about 10,000 nodes and 27,000 relationships) in a
/// new SQLite file in `dir`.
pub fn generated(runtime: &tokio::runtime::Runtime, dir: &std::path::Path) -> Store {
    let mut file = Vec::new();
    pvgraph::generate::write(pvgraph::generate::Plan { organisations: 100, seed: 7 }, &mut file).unwrap();
    let text = String::from_utf8(file).unwrap();
    runtime.block_on(async {
        let store = store::open(&StoreLocation::Sqlite(dir.join("bench.db"))).await.unwrap();
        pvgraph::seed::load(&store, &text).await.unwrap();
        store
    })
}
