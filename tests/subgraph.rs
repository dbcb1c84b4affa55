//! pvgraph as an Apollo Federation v2 subgraph: every node kind is an entity
//! keyed by `id`, `_service` serves the federation SDL, and a gateway's batch
//! of representations costs one store call, whatever its size and kinds.
//! (The composition with another subgraph behind a real gateway is tested in
//! `tests/federation/`, with Apollo's own libraries.)

mod common;

use std::collections::BTreeSet;

use common::counting::{Call, Harness, count};
use pvgraph::domain::{Node, NodeKind};
use serde_json::{Value, json};

const ENTITIES: &str = "query($r: [_Any!]!) { _entities(representations: $r) { __typename ... on Node { id title } } }";

/// The GraphQL type name of a node kind.
fn type_name(kind: NodeKind) -> String {
    let segment = kind.segment();
    segment[..1].to_uppercase() + &segment[1..]
}

fn representation(node: &Node) -> Value {
    json!({ "__typename": type_name(node.kind()), "id": node.id.as_str() })
}

async fn seeded_nodes(harness: &Harness) -> Vec<Node> {
    let (nodes, _) = harness.store.dump().await.expect("the graph dumps");
    nodes
}

#[tokio::test]
async fn every_node_of_every_kind_resolves_as_an_entity_in_one_store_call() {
    let harness = Harness::seeded().await;
    let nodes = seeded_nodes(&harness).await;
    let kinds: BTreeSet<String> = nodes.iter().map(|n| type_name(n.kind())).collect();
    assert_eq!(kinds.len(), 7, "the seed holds every kind: {kinds:?}");

    let representations: Vec<Value> = nodes.iter().map(representation).collect();
    let (data, calls) = harness.run_with(ENTITIES, json!({ "r": representations })).await;

    let entities = data["_entities"].as_array().expect("a list");
    assert_eq!(entities.len(), nodes.len());
    for (entity, node) in entities.iter().zip(&nodes) {
        assert_eq!(entity["id"], node.id.as_str());
        assert_eq!(entity["title"], node.title.as_str());
        assert_eq!(entity["__typename"], type_name(node.kind()));
    }
    assert_eq!(calls, [Call { method: "nodes", ids: nodes.len() }], "one call for {} representations", nodes.len());
}

#[tokio::test]
async fn a_representation_pvgraph_does_not_hold_resolves_to_null_without_failing_the_batch() {
    let harness = Harness::seeded().await;
    let representations = json!([
        { "__typename": "Learning", "id": "kc:learning:embrace-uncertainty-and-failure" },
        { "__typename": "Learning", "id": "kc:learning:no-such-learning" },
        // The id names a principle: it is no Learning.
        { "__typename": "Learning", "id": "kc:principle:take-the-right-risks" },
        { "__typename": "Principle", "id": "not an id" },
        { "__typename": "Principle", "id": "kc:principle:take-the-right-risks" },
    ]);
    let (data, calls) = harness.run_with(ENTITIES, json!({ "r": representations })).await;
    let ids: Vec<Value> = data["_entities"].as_array().unwrap().iter().map(|e| e["id"].clone()).collect();
    assert_eq!(
        ids,
        [
            json!("kc:learning:embrace-uncertainty-and-failure"),
            Value::Null,
            Value::Null,
            Value::Null,
            json!("kc:principle:take-the-right-risks")
        ],
        "{data:#}"
    );
    // The two well-formed ids of the asked kind, and the missing one, in one call.
    assert_eq!(calls, [Call { method: "nodes", ids: 3 }]);
}

#[tokio::test]
async fn fields_below_entities_batch_by_depth_not_by_representation() {
    let harness = Harness::seeded().await;
    let experiments: Vec<Node> =
        seeded_nodes(&harness).await.into_iter().filter(|n| n.kind() == NodeKind::Experiment).collect();
    let query = "query($r: [_Any!]!) { _entities(representations: $r) { \
                 ... on Experiment { id produced { id producedBy { id } } } } }";
    for take in [2, experiments.len()] {
        let representations: Vec<Value> = experiments.iter().take(take).map(representation).collect();
        let (data, calls) = harness.run_with(query, json!({ "r": representations })).await;
        let produced: usize =
            data["_entities"].as_array().unwrap().iter().map(|e| e["produced"].as_array().unwrap().len()).sum();
        assert!(produced > 0, "{take} experiments produced learnings: {data:#}");
        // The entities, then one edges and one nodes call per relationship field.
        assert_eq!(count(&calls, "nodes"), 3, "{take}: {calls:?}");
        assert_eq!(count(&calls, "edges"), 2, "{take}: {calls:?}");
        assert_eq!(calls[0], Call { method: "nodes", ids: take });
    }
}

#[tokio::test]
async fn the_service_serves_the_federation_sdl_with_every_kind_keyed_by_id() {
    let harness = Harness::seeded().await;
    let (data, _) = harness
        .run(
            r#"{ _service { sdl }
                 node: __type(name: "Node") { possibleTypes { name } }
                 entity: __type(name: "_Entity") { possibleTypes { name } } }"#,
        )
        .await;
    let sdl = data["_service"]["sdl"].as_str().expect("an SDL");
    assert_eq!(sdl, pvgraph::graphql::subgraph_sdl(), "`pvgraph schema --federation` prints what `_service` serves");

    let names = |key: &str| -> BTreeSet<String> {
        data[key]["possibleTypes"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(names("entity"), names("node"), "every node kind, and nothing else, is an entity");
    for name in names("node") {
        let declaration = format!("type {name} implements Node @key(fields: \"id\") {{");
        assert!(sdl.contains(&declaration), "the SDL declares `{declaration}`");
    }
    assert!(sdl.contains("extend schema @link(\n\turl: \"https://specs.apollo.dev/federation/v2."), "{sdl}");
    assert!(sdl.contains("\"@key\""), "the link imports @key");
    // Federation's own machinery is the gateway's business, not part of the subgraph's schema.
    for internal in ["_entities", "_service", "_Any", "_Entity"] {
        assert!(!sdl.contains(internal), "the SDL leaves out {internal}");
    }
    // Subscriptions stay out: a gateway does not route them to subgraphs.
    assert!(!sdl.contains("type Subscription"));
    assert!(sdl.contains("type Query {") && sdl.contains("type Mutation {"));
}
