//! The fictional partner dataset (`seed/northwind.json`) stands on its own,
//! says it is fictional, and has nodes of every visibility; its links to King
//! County (`seed/northwind-links.json`) join the two governments' graphs once
//! both are present, are kept with a foreign end (the other government's id)
//! where only one is, and are refused whole where neither is.

mod common;

use std::collections::BTreeSet;

use common::temp_dir;
use pvgraph::domain::{NodeId, Visibility};
use pvgraph::store::{self, Direction, Store, StoreLocation, TraceDirection, TraceRequest};

const NORTHWIND: &str = include_str!("../seed/northwind.json");
/// The links each government's instance holds: the claims it makes, from its own nodes.
const KC_LINKS: &str = include_str!("../seed/kc-links-to-northwind.json");
const LINKS: &str = include_str!("../seed/northwind-links.json");

async fn store_with(dir: &tempfile::TempDir, seeds: &[&str]) -> Store {
    let store = store::open(&StoreLocation::Sqlite(dir.path().join("pvgraph.db"))).await.expect("the store opens");
    for seed in seeds {
        pvgraph::seed::load(&store, seed).await.expect("the seed loads");
    }
    store
}

fn owner(id: &NodeId) -> &str {
    id.organisation()
}

#[tokio::test]
async fn the_partner_dataset_imports_on_its_own_and_says_it_is_fictional() {
    let dir = temp_dir();
    let store = store_with(&dir, &[NORTHWIND]).await;
    let (nodes, edges) = store.dump().await.unwrap();
    assert!(nodes.len() >= 20 && edges.len() >= 20, "{} nodes, {} relationships", nodes.len(), edges.len());

    let owners: BTreeSet<&str> = nodes.iter().map(|n| owner(&n.id)).collect();
    assert_eq!(owners, BTreeSet::from(["northwind"]), "the file holds only its own organisation's nodes");
    let organisation = nodes.iter().find(|n| n.id.as_str() == "northwind:organisation:northwind").unwrap();
    assert!(organisation.title.contains("(fictional)"), "{}", organisation.title);
    assert!(organisation.description.starts_with("Fictional"), "{}", organisation.description);
    for node in &nodes {
        assert!(node.tags.iter().any(|t| t == "fictional"), "{} is tagged fictional", node.id);
    }

    let visibilities: BTreeSet<&str> = nodes.iter().map(|n| n.visibility.as_str()).collect();
    assert_eq!(visibilities, BTreeSet::from(["PARTNERS", "PRIVATE", "PUBLIC"]));
    // The PRIVATE nodes are linked into the graph, so that sharing rules have something to hide.
    for private in nodes.iter().filter(|n| n.visibility == Visibility::Private) {
        assert!(edges.iter().any(|e| e.from == private.id || e.to == private.id), "{} is linked", private.id);
    }
}

#[tokio::test]
async fn the_links_join_the_two_governments_in_both_directions() {
    for (links, claimant) in [(KC_LINKS, "kc"), (LINKS, "northwind")] {
        let file: serde_json::Value = serde_json::from_str(links).expect("the links file is JSON");
        assert_eq!(file["nodes"], serde_json::json!([]), "the links file holds relationships only");
        for (i, record) in file["relationships"].as_array().unwrap().iter().enumerate() {
            let [from, to] = ["from", "to"].map(|end| NodeId::parse(record[end].as_str().unwrap()).unwrap());
            let ends = BTreeSet::from([owner(&from), owner(&to)]);
            assert_eq!(ends, BTreeSet::from(["kc", "northwind"]), "relationships[{i}] joins the two governments");
            assert_eq!(owner(&from), claimant, "relationships[{i}] is a claim of the instance that holds it");
        }
    }

    let dir = temp_dir();
    let store = store_with(&dir, &[pvgraph::seed::KING_COUNTY, NORTHWIND, KC_LINKS, LINKS]).await;
    let to_northwind = store.influences_across(Some("kc"), Some("northwind"), 100).await.unwrap();
    let to_kc = store.influences_across(Some("northwind"), Some("kc"), 100).await.unwrap();
    assert_eq!((to_northwind.len(), to_kc.len()), (3, 2), "{to_northwind:?} {to_kc:?}");

    // A King County learning informed a Northwind experiment, whose learning in turn
    // shaped a King County learning: one trace crosses both ways.
    let trace = store
        .trace(&TraceRequest {
            from: NodeId::parse("kc:learning:time-and-space-for-reflection").unwrap(),
            direction: TraceDirection::Downstream,
            max_depth: 4,
            via: Vec::new(),
            kinds: Vec::new(),
            as_of: None,
            audience: Default::default(),
            max_nodes: pvgraph::store::traverse::MAX_TRACE_NODES,
        })
        .await
        .unwrap();
    let reached: BTreeSet<&str> = trace.nodes.iter().map(|(n, _)| n.id.as_str()).collect();
    for id in [
        "northwind:experiment:reflection-fridays",
        "northwind:learning:reflection-needs-shift-cover",
        "kc:learning:reflection-needs-leader-sponsorship",
    ] {
        assert!(reached.contains(id), "the trace reaches {id}: {reached:?}");
    }
}

#[tokio::test]
async fn beside_one_dataset_the_links_keep_a_foreign_end_and_without_either_they_are_refused_whole() {
    let dir = temp_dir();
    let store = store_with(&dir, &[NORTHWIND]).await;
    let before = store.dump().await.unwrap().1.len();
    let loaded = pvgraph::seed::load(&store, LINKS).await.expect("the links load beside Northwind alone");
    assert_eq!(loaded.foreign, [("kc".to_owned(), loaded.relationships)], "every link reaches King County");
    assert_eq!(store.dump().await.unwrap().1.len(), before + loaded.relationships);
    let into_kc = store.edges(&[NodeId::parse("kc:principle:take-the-right-risks").unwrap()], Direction::In).await;
    let from: Vec<String> = into_kc.unwrap().iter().map(|e| e.from.to_string()).collect();
    assert_eq!(from, ["northwind:experiment:risk-review-pilot"]);
    assert!(store.nodes(&[NodeId::parse("kc:principle:take-the-right-risks").unwrap()]).await.unwrap().is_empty());

    let empty = store::open(&StoreLocation::Sqlite(dir.path().join("empty.db"))).await.unwrap();
    let error = pvgraph::seed::load(&empty, LINKS).await.expect_err("no link has an end in an empty store");
    let no_local_end = matches!(error, pvgraph::domain::Error::Invalid { reason: Some("NO_LOCAL_END"), .. });
    assert!(no_local_end, "{error:?}");
    assert!(error.to_string().contains("relationships[0]"), "{error}");
    assert!(empty.dump().await.unwrap().1.is_empty(), "nothing was written");
}

/// The README's cross-government trace, as an analyst would paste it.
fn readme_trace() -> String {
    let readme = include_str!("../README.md");
    readme
        .split("```graphql\n")
        .skip(1)
        .map(|block| block.split("```").next().unwrap())
        .find(|block| block.contains("trace(from: \"kc:learning:time-and-space-for-reflection\""))
        .expect("the README shows the cross-government trace")
        .to_owned()
}

#[tokio::test]
async fn the_readme_trace_crosses_into_the_partner_and_back() {
    let dir = temp_dir();
    let server = common::TestServer::empty(dir.path()).await;
    for seed in [pvgraph::seed::KING_COUNTY, NORTHWIND, KC_LINKS, LINKS] {
        pvgraph::seed::load(&server.store, seed).await.expect("the seed loads");
    }
    let data = server.data(&readme_trace(), serde_json::json!({})).await;
    let nodes = data["trace"]["nodes"].as_array().unwrap();
    let at = |id: &str| nodes.iter().find(|n| n["node"]["id"] == id).map(|n| n["depth"].as_u64().unwrap());
    assert_eq!(at("northwind:experiment:reflection-fridays"), Some(1), "{data:#}");
    assert_eq!(at("northwind:learning:reflection-needs-shift-cover"), Some(2), "{data:#}");
    // Both ways across the border: King County to Northwind, and Northwind back to King County.
    let crossings: BTreeSet<(String, String)> = data["trace"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let owner = |end: &serde_json::Value| format!("{:?}", end.as_str().unwrap().split(':').next().unwrap());
            (owner(&e["fromId"]), owner(&e["toId"]))
        })
        .filter(|(from, to)| from != to)
        .collect();
    let expected = [("kc", "northwind"), ("northwind", "kc")].map(|(a, b)| (format!("{a:?}"), format!("{b:?}")));
    assert_eq!(crossings, BTreeSet::from(expected), "{data:#}");
}
