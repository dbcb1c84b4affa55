//! Nested queries cost a fixed number of store calls, however many results
//! they touch: the request's DataLoaders batch each level into one call.
//!
//! The store calls are counted by `common::counting`, which forwards each one
//! to the real SQLite store.

mod common;

use common::counting::{Call, Harness, count, methods};
use serde_json::{Value, json};

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
    // whatever the page size. The two branches run side by side and may or may not share
    // a round (each store call takes its own time, and a round waits for the loads already
    // under way), so the exact number differs between runs; it is bounded, never
    // proportional to N. The deeper branch alone (guides, produced, influences and the
    // influences' nodes) takes four rounds of edges, one after another.
    let bound = RELATIONSHIP_FIELDS * 2 + 2;
    for (calls, n) in [(&two_calls, 2), (&fourteen_calls, 14)] {
        assert_eq!(count(calls, "list"), 1, "N={n}: {calls:?}");
        assert_eq!(count(calls, "count"), 0, "N={n}: totalCount was not asked for");
        assert!(count(calls, "edges") >= 4, "N={n}: every level was followed: {calls:?}");
        assert!(calls.len() <= bound, "N={n}: {} calls > {bound}: {calls:?}", calls.len());
        // The first round asks about every principle of the page.
        assert_eq!(calls[1].ids, n, "N={n}: {calls:?}");
    }
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

/// A list of more than thirty objects is resolved in a `FuturesUnordered`, which stops each
/// poll after two objects woke themselves: the round still waits for every object's key.
#[tokio::test]
async fn a_round_over_a_long_list_is_one_call() {
    let harness = Harness::seeded().await;
    let (listed, _) = harness
        .run(
            "{ principles(first: 50) { nodes { id } } barriers(first: 50) { nodes { id } } \
               learnings(first: 50) { nodes { id } } experiments(first: 50) { nodes { id } } }",
        )
        .await;
    let mut ids = Vec::new();
    all_under(&listed, "id", &mut ids);
    assert!(ids.len() > 40, "{ids:?}");
    let query = format!("{{ nodes(ids: {}) {{ id links(direction: IN) {{ kind }} }} }}", json!(ids));
    let (data, calls) = harness.run(&query).await;
    let nodes = data["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), ids.len());
    assert!(nodes.iter().any(|n| !n["links"].as_array().unwrap().is_empty()), "{data}");
    assert_eq!(calls, [Call { method: "nodes", ids: ids.len() }, Call { method: "edges", ids: ids.len() }]);
}

/// On the multi-threaded runtime the server runs on, another worker may pick up a loader's
/// task while the request is still asking for keys; the loads must still wait for the whole
/// round. Repeated, since a split depends on which worker runs first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_round_of_fifteen_fields_is_one_call_on_the_multi_threaded_runtime() {
    let harness = Harness::seeded().await;
    let query = "{ learnings(first: 15) { nodes { id producedBy { id title } } } }";
    for round in 0..40 {
        let (data, calls) = harness.run(query).await;
        let learnings = data["learnings"]["nodes"].as_array().unwrap();
        assert_eq!(learnings.len(), 15);
        let producers: usize = learnings.iter().map(|l| l["producedBy"].as_array().unwrap().len()).sum();
        assert!(producers >= 15, "every seeded learning has a producing experiment: {data}");
        assert_eq!(methods(&calls), ["list", "edges", "nodes"], "round {round}: {calls:?}");
        assert_eq!(calls[1].ids, 15, "round {round}: {calls:?}");
    }
}
