//! Relationships through the API: `link`, `unlink`, `recordInfluence`, and the
//! relationship fields on both of their ends.

mod common;

use std::collections::BTreeSet;

use common::{TestServer, temp_dir};
use serde_json::{Value, json};

const LINK: &str = "mutation($i: LinkInput!) { link(input: $i) { kind assertion quote locator how on strength \
    from { __typename id } to { __typename id } } }";
const UNLINK: &str = "mutation($from: ID!, $kind: RelationshipKind!, $to: ID!) { unlink(from: $from, kind: $kind, to: $to) { \
    kind assertion quote locator how systemCondition on contribution strength sources { id } from { id } to { id } } }";
const RECORD: &str = "mutation($i: RecordInfluenceInput!) { recordInfluence(input: $i) { kind assertion how \
    systemCondition on contribution strength sources { id } quote locator from { id } to { id } } }";

/// The ids of a small graph with one node of each kind (two values), owned by `acme`.
struct Graph {
    value: &'static str,
    value2: &'static str,
    principle: &'static str,
    barrier: &'static str,
    experiment: &'static str,
    learning: &'static str,
    learning2: &'static str,
    source: &'static str,
    source2: &'static str,
}

const G: Graph = Graph {
    value: "acme:value:equity",
    value2: "acme:value:trust",
    principle: "acme:principle:share-power",
    barrier: "acme:barrier:silos",
    experiment: "acme:experiment:open-doors",
    learning: "acme:learning:doors-matter",
    learning2: "acme:learning:trust-takes-time",
    source: "acme:source:report",
    source2: "acme:source:interview",
};

async fn create(server: &TestServer, mutation: &str, input: Value) {
    let query = format!("mutation($i: {}Input!) {{ {}(input: $i) {{ id }} }}", input_type(mutation), mutation);
    server.data(&query, json!({ "i": input })).await;
}

fn input_type(mutation: &str) -> String {
    let mut chars = mutation.chars();
    let first = chars.next().unwrap().to_ascii_uppercase();
    format!("{first}{}", chars.as_str())
}

/// A server with the small graph, nodes only.
async fn small_graph(dir: &std::path::Path) -> TestServer {
    let server = TestServer::empty(dir).await;
    create(&server, "createOrganisation", json!({ "organisation": "acme", "title": "Acme" })).await;
    let org = |more: Value| {
        let mut input = json!({ "organisation": "acme" });
        input.as_object_mut().unwrap().extend(more.as_object().unwrap().clone());
        input
    };
    create(&server, "createValue", org(json!({ "title": "Equity" }))).await;
    create(&server, "createValue", org(json!({ "title": "Trust" }))).await;
    create(&server, "createPrinciple", org(json!({ "title": "Share power", "statement": "Share it." }))).await;
    create(&server, "createBarrier", org(json!({ "title": "Silos", "kind": "STRUCTURAL" }))).await;
    create(&server, "createExperiment", org(json!({ "title": "Open doors", "hypothesis": "Doors help." }))).await;
    let learning =
        json!({ "title": "Doors matter", "statement": "They do.", "kind": "RELATIONSHIP", "capturedOn": "2022-01-10" });
    create(&server, "createLearning", org(learning)).await;
    let learning =
        json!({ "title": "Trust takes time", "statement": "It does.", "kind": "MINDSET", "capturedOn": "2022-03-01" });
    create(&server, "createLearning", org(learning)).await;
    create(&server, "createSource", org(json!({ "title": "Report", "url": "https://example.org/report" }))).await;
    create(&server, "createSource", org(json!({ "title": "Interview", "url": "https://example.org/interview" }))).await;
    server
}

async fn link(server: &TestServer, from: &str, kind: &str, to: &str) -> Value {
    server.data(LINK, json!({ "i": { "from": from, "kind": kind, "to": to } })).await["link"].clone()
}

fn error(body: &Value) -> &Value {
    let error = &body["errors"][0];
    assert!(error.is_object(), "expected an error, got {body:#}");
    &error["extensions"]
}

fn ids_of(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|n| n["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn node(server: &TestServer, id: &str, selection: &str) -> Value {
    let query = format!("query($id: ID!) {{ node(id: $id) {{ id {selection} }} }}");
    server.data(&query, json!({ "id": id })).await["node"].clone()
}

/// The relationships of a node as `KIND from→to` strings.
async fn links(server: &TestServer, id: &str, args: &str) -> BTreeSet<String> {
    let selection = format!("links{args} {{ kind from {{ id }} to {{ id }} }}");
    let node = node(server, id, &selection).await;
    node["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            format!(
                "{} {}→{}",
                l["kind"].as_str().unwrap(),
                l["from"]["id"].as_str().unwrap(),
                l["to"]["id"].as_str().unwrap()
            )
        })
        .collect()
}

fn strings(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn every_allowed_link_shows_on_both_ends() {
    let dir = temp_dir();
    let server = small_graph(dir.path()).await;

    let made = link(&server, G.principle, "UPHOLDS", G.value).await;
    assert_eq!(made["kind"], "UPHOLDS");
    assert_eq!(made["assertion"], "INFERRED", "a link is INFERRED unless told otherwise");
    assert_eq!(made["from"], json!({ "__typename": "Principle", "id": G.principle }));
    assert_eq!(made["to"], json!({ "__typename": "Value", "id": G.value }));
    assert_eq!(made["quote"], Value::Null);
    assert_eq!(made["how"], Value::Null, "only INFLUENCED has influence properties");

    link(&server, G.barrier, "HINDERS", G.principle).await;
    link(&server, G.barrier, "HINDERS", G.value2).await;
    link(&server, G.experiment, "GUIDED_BY", G.principle).await;
    link(&server, G.experiment, "ADDRESSES", G.barrier).await;
    link(&server, G.experiment, "PRODUCED", G.learning).await;
    let cites = server
        .data(
            LINK,
            json!({ "i": { "from": G.principle, "kind": "CITES", "to": G.source, "assertion": "SOURCED",
                           "quote": "Share power with communities.", "locator": "p. 12" } }),
        )
        .await["link"]
        .clone();
    assert_eq!(cites["kind"], "CITES");
    assert_eq!(cites["assertion"], "SOURCED");
    assert_eq!(cites["quote"], "Share power with communities.");
    assert_eq!(cites["locator"], "p. 12");
    let bare = link(&server, G.learning, "CITES", G.source).await;
    assert_eq!((bare["quote"].clone(), bare["locator"].clone()), (Value::Null, Value::Null));

    // UPHOLDS: Principle.upholds / Value.upheldBy
    let principle = node(
        &server,
        G.principle,
        "... on Principle { upholds { id } hinderedBy { id } guides { id } \
         cites { node { id } source { id } quote locator assertion } }",
    )
    .await;
    assert_eq!(ids_of(&principle["upholds"]), [G.value]);
    assert_eq!(ids_of(&principle["hinderedBy"]), [G.barrier]);
    assert_eq!(ids_of(&principle["guides"]), [G.experiment]);
    assert_eq!(
        principle["cites"],
        json!([{ "node": { "id": G.principle }, "source": { "id": G.source },
                 "quote": "Share power with communities.", "locator": "p. 12", "assertion": "SOURCED" }])
    );
    let value = node(&server, G.value, "... on Value { upheldBy { id } hinderedBy { id } }").await;
    assert_eq!(ids_of(&value["upheldBy"]), [G.principle]);
    assert_eq!(ids_of(&value["hinderedBy"]), Vec::<String>::new());
    let value2 = node(&server, G.value2, "... on Value { upheldBy { id } hinderedBy { id } }").await;
    assert_eq!(ids_of(&value2["upheldBy"]), Vec::<String>::new());
    assert_eq!(ids_of(&value2["hinderedBy"]), [G.barrier]);

    // HINDERS reaches a principle and a value; ADDRESSES comes back as addressedBy.
    let barrier = node(&server, G.barrier, "... on Barrier { hinders { __typename id } addressedBy { id } }").await;
    assert_eq!(
        barrier["hinders"],
        json!([{ "__typename": "Principle", "id": G.principle }, { "__typename": "Value", "id": G.value2 }]),
        "ordered by title: Share power, Trust"
    );
    assert_eq!(ids_of(&barrier["addressedBy"]), [G.experiment]);

    // GUIDED_BY, ADDRESSES, PRODUCED from the experiment's side.
    let experiment =
        node(&server, G.experiment, "... on Experiment { guidedBy { id } addresses { id } produced { id } }").await;
    assert_eq!(ids_of(&experiment["guidedBy"]), [G.principle]);
    assert_eq!(ids_of(&experiment["addresses"]), [G.barrier]);
    assert_eq!(ids_of(&experiment["produced"]), [G.learning]);
    let learning =
        node(&server, G.learning, "... on Learning { producedBy { id } cites { source { id } quote } }").await;
    assert_eq!(ids_of(&learning["producedBy"]), [G.experiment]);
    assert_eq!(learning["cites"], json!([{ "source": { "id": G.source }, "quote": null }]));

    // CITES from the source's side, one per citing node.
    let source = node(&server, G.source, "... on Source { citedBy { node { id } source { id } quote locator } }").await;
    let cited_by: BTreeSet<String> =
        source["citedBy"].as_array().unwrap().iter().map(|c| c["node"]["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(cited_by, strings(&[G.principle, G.learning]));
    assert!(source["citedBy"].as_array().unwrap().iter().all(|c| c["source"]["id"] == G.source));

    // links(direction, kinds)
    let out = [
        format!("GUIDED_BY {}→{}", G.experiment, G.principle),
        format!("ADDRESSES {}→{}", G.experiment, G.barrier),
        format!("PRODUCED {}→{}", G.experiment, G.learning),
    ];
    assert_eq!(links(&server, G.experiment, "(direction: OUT)").await, out.iter().cloned().collect());
    assert_eq!(links(&server, G.experiment, "").await, out.iter().cloned().collect(), "BOTH is the default");
    assert_eq!(links(&server, G.experiment, "(direction: IN)").await, BTreeSet::new());
    assert_eq!(
        links(&server, G.experiment, "(kinds: [PRODUCED, UPHOLDS])").await,
        [out[2].clone()].into_iter().collect()
    );
    let principle_in =
        [format!("HINDERS {}→{}", G.barrier, G.principle), format!("GUIDED_BY {}→{}", G.experiment, G.principle)];
    let principle_out = [format!("UPHOLDS {}→{}", G.principle, G.value), format!("CITES {}→{}", G.principle, G.source)];
    assert_eq!(links(&server, G.principle, "(direction: IN)").await, principle_in.iter().cloned().collect());
    assert_eq!(links(&server, G.principle, "(direction: OUT)").await, principle_out.iter().cloned().collect());
    assert_eq!(
        links(&server, G.principle, "(direction: BOTH)").await,
        principle_in.iter().chain(&principle_out).cloned().collect()
    );
    assert_eq!(
        links(&server, G.principle, "(direction: BOTH, kinds: [HINDERS, CITES])").await,
        strings(&[&principle_in[0], &principle_out[1]])
    );
    assert_eq!(links(&server, G.principle, "(kinds: [])").await, BTreeSet::new(), "no kinds, no links");
}

/// The relationships of a node as `KIND from→to` strings, in the order the API gives them.
async fn links_in_order(server: &TestServer, id: &str) -> Vec<String> {
    let node = node(server, id, "links { kind from { id } to { id } }").await;
    let text = |v: &Value| v.as_str().unwrap().to_owned();
    let links = node["links"].as_array().unwrap().iter();
    links.map(|l| format!("{} {}→{}", text(&l["kind"]), text(&l["from"]["id"]), text(&l["to"]["id"]))).collect()
}

/// `links` lists outgoing relationships first, then incoming ones, each in the order of
/// `RelationshipKind` in the schema and then by the id at the other end, whatever order they
/// were made in and whichever order the store keeps them in (SQLite's is by the kind's name).
#[tokio::test]
async fn links_come_in_the_order_the_schema_gives() {
    let dir = temp_dir();
    let server = small_graph(dir.path()).await;
    link(&server, G.principle, "CITES", G.source).await;
    link(&server, G.principle, "UPHOLDS", G.value2).await;
    link(&server, G.principle, "UPHOLDS", G.value).await;
    link(&server, G.experiment, "GUIDED_BY", G.principle).await;
    link(&server, G.barrier, "HINDERS", G.principle).await;
    link(&server, G.experiment, "PRODUCED", G.learning2).await;
    link(&server, G.experiment, "PRODUCED", G.learning).await;
    link(&server, G.experiment, "ADDRESSES", G.barrier).await;

    let line = |(kind, from, to): (&str, &str, &str)| format!("{kind} {from}→{to}");
    let principle = [
        ("UPHOLDS", G.principle, G.value),
        ("UPHOLDS", G.principle, G.value2),
        ("CITES", G.principle, G.source),
        ("HINDERS", G.barrier, G.principle),
        ("GUIDED_BY", G.experiment, G.principle),
    ];
    assert_eq!(links_in_order(&server, G.principle).await, principle.map(line));
    let experiment = [
        ("GUIDED_BY", G.experiment, G.principle),
        ("ADDRESSES", G.experiment, G.barrier),
        ("PRODUCED", G.experiment, G.learning),
        ("PRODUCED", G.experiment, G.learning2),
    ];
    assert_eq!(links_in_order(&server, G.experiment).await, experiment.map(line));
}

#[tokio::test]
async fn links_the_model_does_not_allow_are_refused_and_not_written() {
    let dir = temp_dir();
    let server = small_graph(dir.path()).await;
    let refused = [
        (G.value, "UPHOLDS", G.principle),
        (G.principle, "UPHOLDS", G.principle),
        (G.barrier, "HINDERS", G.experiment),
        (G.principle, "HINDERS", G.value),
        (G.principle, "GUIDED_BY", G.experiment),
        (G.experiment, "ADDRESSES", G.principle),
        (G.learning, "PRODUCED", G.experiment),
        (G.experiment, "PRODUCED", G.value),
        (G.source, "CITES", G.source2),
        (G.principle, "CITES", G.value),
    ];
    for (from, kind, to) in refused {
        let body = server.gql(LINK, json!({ "i": { "from": from, "kind": kind, "to": to } })).await;
        assert_eq!(error(&body)["code"], "BAD_USER_INPUT", "{from} {kind} {to}: {body:#}");
        assert_eq!(error(&body)["reason"], "LINK_NOT_ALLOWED", "{from} {kind} {to}");
    }
    // INFLUENCED needs recordInfluence.
    let body = server.gql(LINK, json!({ "i": { "from": G.learning, "kind": "INFLUENCED", "to": G.value } })).await;
    assert_eq!(error(&body)["code"], "BAD_USER_INPUT", "{body:#}");
    assert_eq!(error(&body)["field"], "kind");
    // Citation properties belong to CITES only.
    let body = server
        .gql(LINK, json!({ "i": { "from": G.principle, "kind": "UPHOLDS", "to": G.value, "quote": "words" } }))
        .await;
    assert_eq!(error(&body)["code"], "BAD_USER_INPUT", "{body:#}");
    // Ends that are not ids at all.
    let body = server.gql(LINK, json!({ "i": { "from": "nope", "kind": "UPHOLDS", "to": G.value } })).await;
    assert_eq!(error(&body)["code"], "BAD_USER_INPUT", "{body:#}");

    for id in [G.value, G.value2, G.principle, G.barrier, G.experiment, G.learning, G.source, G.source2] {
        assert_eq!(links(&server, id, "").await, BTreeSet::new(), "{id} has no relationship");
    }
}

/// A node of an organisation this instance does not hold may be a relationship's foreign end only
/// when that organisation is a configured partner. With none configured, such an id is not found,
/// as ever, whichever way round and through whichever mutation, and nothing is stored.
#[tokio::test]
async fn a_link_to_an_organisation_that_is_no_partner_is_not_found() {
    let dir = temp_dir();
    let server = small_graph(dir.path()).await;
    let body =
        server.gql(LINK, json!({ "i": { "from": G.principle, "kind": "UPHOLDS", "to": "nw:value:open-doors" } })).await;
    assert_eq!(error(&body)["code"], "NOT_FOUND", "{body:#}");
    let input = json!({ "from": G.learning, "to": "nw:principle:learn-in-public", "how": "CHANGED_PRACTICE",
        "systemCondition": "PRACTICES", "on": "2023-01-01" });
    let body = server.gql(RECORD, json!({ "i": input })).await;
    assert_eq!(error(&body)["code"], "NOT_FOUND", "{body:#}");
    let body = server.gql(UNLINK, json!({ "from": G.principle, "kind": "UPHOLDS", "to": "nw:value:open-doors" })).await;
    assert_eq!(error(&body)["code"], "NOT_FOUND", "{body:#}");
    assert_eq!(links(&server, G.principle, "").await, BTreeSet::new());
    assert_eq!(links(&server, G.learning, "").await, BTreeSet::new());
}

#[tokio::test]
async fn a_link_to_a_missing_node_is_not_found_and_a_second_link_is_a_conflict() {
    let dir = temp_dir();
    let server = small_graph(dir.path()).await;
    for (from, to) in [(G.principle, "acme:value:missing"), ("acme:principle:missing", G.value)] {
        let body = server.gql(LINK, json!({ "i": { "from": from, "kind": "UPHOLDS", "to": to } })).await;
        assert_eq!(error(&body)["code"], "NOT_FOUND", "{body:#}");
    }
    assert_eq!(links(&server, G.principle, "").await, BTreeSet::new());
    assert_eq!(links(&server, G.value, "").await, BTreeSet::new());

    link(&server, G.principle, "UPHOLDS", G.value).await;
    let body = server
        .gql(LINK, json!({ "i": { "from": G.principle, "kind": "UPHOLDS", "to": G.value, "assertion": "SOURCED" } }))
        .await;
    assert_eq!(error(&body)["code"], "CONFLICT", "{body:#}");
    let upholds = server
        .data("query($id: ID!) { node(id: $id) { links { kind assertion } } }", json!({ "id": G.principle }))
        .await;
    assert_eq!(
        upholds["node"]["links"],
        json!([{ "kind": "UPHOLDS", "assertion": "INFERRED" }]),
        "the first link stays"
    );
}

// ---------------------------------------------------------------------------
// Influences
// ---------------------------------------------------------------------------

const INFLUENCES: &str = "query($id: ID!, $first: Int, $after: String) { node(id: $id) { ... on Learning { \
    influences(first: $first, after: $after) { totalCount pageInfo { hasNextPage hasPreviousPage endCursor } \
    edges { cursor node { id } learning { id } target { id } how systemCondition on contribution strength assertion sources { id } } } } } }";

fn influenced_by(type_name: &str) -> String {
    format!(
        "query($id: ID!) {{ node(id: $id) {{ ... on {type_name} {{ influencedBy {{ totalCount edges {{ node {{ id }} \
         learning {{ id }} target {{ id }} how systemCondition on contribution strength assertion sources {{ id }} }} }} }} }} }}"
    )
}

#[tokio::test]
async fn a_recorded_influence_carries_its_properties_to_both_ends() {
    let dir = temp_dir();
    let server = small_graph(dir.path()).await;
    let input = json!({
        "from": G.learning, "to": G.principle, "how": "REVISED_PRINCIPLE", "systemCondition": "POWER_DYNAMICS",
        "on": "2022-03-15", "contribution": "It reframed the principle.", "strength": "MODERATE",
        "assertion": "SOURCED", "sources": [G.source2, G.source]
    });
    let made = server.data(RECORD, json!({ "i": input })).await["recordInfluence"].clone();
    assert_eq!(
        made,
        json!({ "kind": "INFLUENCED", "assertion": "SOURCED", "how": "REVISED_PRINCIPLE",
                "systemCondition": "POWER_DYNAMICS", "on": "2022-03-15", "contribution": "It reframed the principle.",
                "strength": "MODERATE", "sources": [{ "id": G.source2 }, { "id": G.source }],
                "quote": null, "locator": null, "from": { "id": G.learning }, "to": { "id": G.principle } })
    );

    let expected_edge = |node: &str| {
        json!({ "node": { "id": node }, "learning": { "id": G.learning }, "target": { "id": G.principle },
                "how": "REVISED_PRINCIPLE", "systemCondition": "POWER_DYNAMICS", "on": "2022-03-15",
                "contribution": "It reframed the principle.", "strength": "MODERATE", "assertion": "SOURCED",
                "sources": [{ "id": G.source2 }, { "id": G.source }] })
    };
    let out = server.data(INFLUENCES, json!({ "id": G.learning })).await["node"]["influences"].clone();
    assert_eq!(out["totalCount"], 1);
    let mut edge = out["edges"][0].clone();
    edge.as_object_mut().unwrap().remove("cursor");
    assert_eq!(edge, expected_edge(G.principle), "on the learning, node is the target");

    let into =
        server.data(&influenced_by("Principle"), json!({ "id": G.principle })).await["node"]["influencedBy"].clone();
    assert_eq!(into["totalCount"], 1);
    assert_eq!(into["edges"][0], expected_edge(G.learning), "on the target, node is the learning");

    // The generic links see it too.
    assert_eq!(
        links(&server, G.principle, "(direction: IN, kinds: [INFLUENCED])").await,
        strings(&[&format!("INFLUENCED {}→{}", G.learning, G.principle)])
    );
}

#[tokio::test]
async fn influences_reach_every_allowed_kind_with_defaults_oldest_first_and_in_pages() {
    let dir = temp_dir();
    let server = small_graph(dir.path()).await;
    // Recorded out of date order.
    let targets = [
        (G.experiment, "Experiment", "INFORMED_EXPERIMENT", "2022-06-01"),
        (G.value, "Value", "SHIFTED_MINDSET", "2022-02-01"),
        (G.barrier, "Barrier", "REDUCED_BARRIER", "2022-04-01"),
        (G.learning2, "Learning", "BUILT_RELATIONSHIP", "2022-03-01"),
        (G.principle, "Principle", "REVISED_PRINCIPLE", "2022-05-01"),
    ];
    for (to, _, how, on) in targets {
        let input = json!({ "from": G.learning, "to": to, "how": how, "systemCondition": "PRACTICES", "on": on });
        let made = server.data(RECORD, json!({ "i": input })).await["recordInfluence"].clone();
        assert_eq!(made["strength"], "UNTESTED", "strength defaults to UNTESTED");
        assert_eq!(made["assertion"], "INFERRED", "assertion defaults to INFERRED");
        assert_eq!(made["contribution"], Value::Null);
        assert_eq!(made["sources"], json!([]));
    }
    for (to, type_name, how, on) in targets {
        let into = server.data(&influenced_by(type_name), json!({ "id": to })).await["node"]["influencedBy"].clone();
        assert_eq!(into["totalCount"], 1, "{type_name}");
        assert_eq!(into["edges"][0]["learning"]["id"], G.learning);
        assert_eq!(into["edges"][0]["how"], how);
        assert_eq!(into["edges"][0]["on"], on);
    }

    // Oldest first, in pages of two.
    let mut dates = Vec::new();
    let mut after: Option<String> = None;
    for round in 0..5 {
        let page = server.data(INFLUENCES, json!({ "id": G.learning, "first": 2, "after": after })).await["node"]
            ["influences"]
            .clone();
        assert_eq!(page["totalCount"], 5);
        assert_eq!(page["pageInfo"]["hasPreviousPage"], round > 0);
        dates.extend(page["edges"].as_array().unwrap().iter().map(|e| e["on"].as_str().unwrap().to_owned()));
        if page["pageInfo"]["hasNextPage"] == false {
            break;
        }
        after = page["pageInfo"]["endCursor"].as_str().map(str::to_owned);
    }
    assert_eq!(dates, ["2022-02-01", "2022-03-01", "2022-04-01", "2022-05-01", "2022-06-01"]);

    // A learning influenced by another shows it on influencedBy, and not on influences.
    let learning2 = server.data(&influenced_by("Learning"), json!({ "id": G.learning2 })).await;
    assert_eq!(learning2["node"]["influencedBy"]["edges"][0]["node"]["id"], G.learning);
    let out2 = server.data(INFLUENCES, json!({ "id": G.learning2 })).await;
    assert_eq!(out2["node"]["influences"]["totalCount"], 0);
}

#[tokio::test]
async fn influences_from_or_to_the_wrong_kinds_are_refused() {
    let dir = temp_dir();
    let server = small_graph(dir.path()).await;
    let cases = [
        (G.experiment, G.principle, "LINK_NOT_ALLOWED"),
        (G.learning, G.source, "LINK_NOT_ALLOWED"),
        (G.learning, "acme:organisation:acme", "LINK_NOT_ALLOWED"),
        (G.learning, G.learning, "SELF_LINK"),
    ];
    for (from, to, reason) in cases {
        let input = json!({ "from": from, "to": to, "how": "CHANGED_PRACTICE", "systemCondition": "PRACTICES", "on": "2023-01-01" });
        let body = server.gql(RECORD, json!({ "i": input })).await;
        assert_eq!(error(&body)["code"], "BAD_USER_INPUT", "{from} → {to}: {body:#}");
        assert_eq!(error(&body)["reason"], reason, "{from} → {to}");
    }
    // Ends that do not exist.
    for (from, to) in [("acme:learning:missing", G.value), (G.learning, "acme:value:missing")] {
        let input = json!({ "from": from, "to": to, "how": "CHANGED_PRACTICE", "systemCondition": "PRACTICES", "on": "2023-01-01" });
        let body = server.gql(RECORD, json!({ "i": input })).await;
        assert_eq!(error(&body)["code"], "NOT_FOUND", "{from} → {to}: {body:#}");
    }
    let influences = server.data(INFLUENCES, json!({ "id": G.learning })).await;
    assert_eq!(influences["node"]["influences"]["totalCount"], 0);
}

/// The real case: King County's Metro plan principle was adopted on 2021-11-17,
/// before the programme's learnings were captured in 2022.
#[tokio::test]
async fn an_influence_before_its_learning_existed_is_refused_and_not_written() {
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    let learning = "kc:learning:time-and-space-for-reflection";
    let principle = "kc:principle:share-power-with-communities";
    let before_out = server.data(INFLUENCES, json!({ "id": learning })).await;
    let before_in = server.data(&influenced_by("Principle"), json!({ "id": principle })).await;
    let facts = node(&server, learning, "... on Learning { capturedOn }").await;
    assert_eq!(facts["capturedOn"], "2022-08-16");
    let adopted = node(&server, principle, "... on Principle { adoptedOn }").await;
    assert_eq!(adopted["adoptedOn"], "2021-11-17");

    let input = json!({
        "from": learning, "to": principle, "how": "REVISED_PRINCIPLE", "systemCondition": "POWER_DYNAMICS",
        "on": "2021-11-20", "contribution": "Shaped the plan's commitment to share power."
    });
    let body = server.gql(RECORD, json!({ "i": input })).await;
    assert_eq!(error(&body)["code"], "BAD_USER_INPUT", "{body:#}");
    assert_eq!(error(&body)["reason"], "INFLUENCE_BEFORE_LEARNING");
    assert_eq!(error(&body)["field"], "on");
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("2021-11-20") && message.contains("2022-08-16"),
        "the message gives both dates: {message}"
    );

    assert_eq!(server.data(INFLUENCES, json!({ "id": learning })).await, before_out, "nothing was written");
    assert_eq!(server.data(&influenced_by("Principle"), json!({ "id": principle })).await, before_in);

    // On the day the learning was captured, it may.
    let mut input = input;
    input["on"] = json!("2022-08-16");
    let made = server.data(RECORD, json!({ "i": input })).await;
    assert_eq!(made["recordInfluence"]["on"], "2022-08-16");
}

#[tokio::test]
async fn an_influence_of_a_learning_without_captured_on_starts_on_the_day_it_was_created() {
    let dir = temp_dir();
    let server = small_graph(dir.path()).await;
    create(
        &server,
        "createLearning",
        json!({ "organisation": "acme", "title": "Undated", "statement": "Now.", "kind": "PROCESS" }),
    )
    .await;
    let input = json!({ "from": "acme:learning:undated", "to": G.value, "how": "CHANGED_PRACTICE",
                        "systemCondition": "PRACTICES", "on": "2001-01-01" });
    let body = server.gql(RECORD, json!({ "i": input })).await;
    assert_eq!(error(&body)["reason"], "INFLUENCE_BEFORE_LEARNING", "{body:#}");
}

#[tokio::test]
async fn a_sourced_influence_needs_a_source_that_exists() {
    let dir = temp_dir();
    let server = small_graph(dir.path()).await;
    let base = json!({ "from": G.learning, "to": G.value, "how": "SHIFTED_MINDSET",
                       "systemCondition": "MENTAL_MODELS", "on": "2022-05-05" });
    let with = |more: Value| {
        let mut input = base.clone();
        input.as_object_mut().unwrap().extend(more.as_object().unwrap().clone());
        input
    };
    let cases = [
        (with(json!({ "assertion": "SOURCED" })), Some("SOURCED_WITHOUT_SOURCE"), "sources"),
        (with(json!({ "assertion": "SOURCED", "sources": [] })), Some("SOURCED_WITHOUT_SOURCE"), "sources"),
        (with(json!({ "sources": ["acme:source:missing"] })), None, "sources"),
        (with(json!({ "assertion": "SOURCED", "sources": [G.source, "acme:source:missing"] })), None, "sources"),
        (with(json!({ "sources": [G.principle] })), None, "sources"),
        (with(json!({ "sources": [G.source, G.source] })), None, "sources"),
    ];
    for (input, reason, field) in cases {
        let body = server.gql(RECORD, json!({ "i": input })).await;
        assert_eq!(error(&body)["code"], "BAD_USER_INPUT", "{input}: {body:#}");
        assert_eq!(error(&body)["field"], field, "{input}");
        if let Some(reason) = reason {
            assert_eq!(error(&body)["reason"], reason, "{input}");
        }
    }
    let influences = server.data(INFLUENCES, json!({ "id": G.learning })).await;
    assert_eq!(influences["node"]["influences"]["totalCount"], 0, "no refused influence was written");

    // HYPOTHETICAL and INFERRED need no source; SOURCED with one is fine.
    let made =
        server.data(RECORD, json!({ "i": with(json!({ "assertion": "SOURCED", "sources": [G.source] })) })).await;
    assert_eq!(made["recordInfluence"]["sources"], json!([{ "id": G.source }]));
    let body = server.gql(RECORD, json!({ "i": with(json!({ "assertion": "HYPOTHETICAL" })) })).await;
    assert_eq!(error(&body)["code"], "CONFLICT", "one influence per learning and target: {body:#}");
}

#[tokio::test]
async fn captured_on_cannot_move_past_an_influence_already_recorded() {
    let dir = temp_dir();
    let server = small_graph(dir.path()).await;
    for (to, on) in [(G.value, "2022-04-01"), (G.principle, "2022-02-01")] {
        let input = json!({ "from": G.learning, "to": to, "how": "SHIFTED_MINDSET", "systemCondition": "MENTAL_MODELS", "on": on });
        server.data(RECORD, json!({ "i": input })).await;
    }
    let update = "mutation($id: ID!, $i: UpdateLearningInput!) { updateLearning(id: $id, input: $i) { capturedOn } }";
    // After the earliest influence: refused, and nothing changes.
    for day in ["2022-02-02", "2022-12-31"] {
        let body = server.gql(update, json!({ "id": G.learning, "i": { "capturedOn": day } })).await;
        assert_eq!(error(&body)["code"], "BAD_USER_INPUT", "{day}: {body:#}");
        assert_eq!(error(&body)["reason"], "INFLUENCE_BEFORE_LEARNING", "{day}");
        assert_eq!(error(&body)["field"], "capturedOn", "{day}");
        let now = node(&server, G.learning, "... on Learning { capturedOn }").await;
        assert_eq!(now["capturedOn"], "2022-01-10");
    }
    // Clearing it makes the learning date from its creation, today: also after the influences.
    let body = server.gql(update, json!({ "id": G.learning, "i": { "capturedOn": null } })).await;
    assert_eq!(error(&body)["reason"], "INFLUENCE_BEFORE_LEARNING", "{body:#}");
    // On or before the earliest influence: fine.
    for day in ["2022-02-01", "2021-06-01"] {
        let data = server.data(update, json!({ "id": G.learning, "i": { "capturedOn": day } })).await;
        assert_eq!(data["updateLearning"]["capturedOn"], day);
    }
    // Once the early influence is gone, the date may move up to the next one.
    server.data(UNLINK, json!({ "from": G.learning, "kind": "INFLUENCED", "to": G.principle })).await;
    let data = server.data(update, json!({ "id": G.learning, "i": { "capturedOn": "2022-04-01" } })).await;
    assert_eq!(data["updateLearning"]["capturedOn"], "2022-04-01");
}

// ---------------------------------------------------------------------------
// Unlink and delete
// ---------------------------------------------------------------------------

#[tokio::test]
async fn unlink_removes_the_relationship_and_returns_it_as_it_was() {
    let dir = temp_dir();
    let server = small_graph(dir.path()).await;
    link(&server, G.principle, "UPHOLDS", G.value).await;
    link(&server, G.principle, "UPHOLDS", G.value2).await;
    server
        .data(
            LINK,
            json!({ "i": { "from": G.experiment, "kind": "CITES", "to": G.source, "quote": "q", "locator": "§2" } }),
        )
        .await;
    let input = json!({ "from": G.learning, "to": G.barrier, "how": "REDUCED_BARRIER", "systemCondition": "RELATIONSHIPS",
                        "on": "2022-02-02", "contribution": "c", "strength": "WEAK", "sources": [G.source2] });
    server.data(RECORD, json!({ "i": input })).await;

    let gone =
        server.data(UNLINK, json!({ "from": G.principle, "kind": "UPHOLDS", "to": G.value })).await["unlink"].clone();
    assert_eq!(gone["kind"], "UPHOLDS");
    assert_eq!(gone["from"]["id"], G.principle);
    assert_eq!(gone["to"]["id"], G.value);
    let principle = node(&server, G.principle, "... on Principle { upholds { id } }").await;
    assert_eq!(ids_of(&principle["upholds"]), [G.value2], "the other UPHOLDS stays");
    let value = node(&server, G.value, "... on Value { upheldBy { id } }").await;
    assert_eq!(ids_of(&value["upheldBy"]), Vec::<String>::new());

    let gone =
        server.data(UNLINK, json!({ "from": G.experiment, "kind": "CITES", "to": G.source })).await["unlink"].clone();
    assert_eq!((gone["quote"].clone(), gone["locator"].clone()), (json!("q"), json!("§2")));
    let source = node(&server, G.source, "... on Source { citedBy { node { id } } }").await;
    assert_eq!(source["citedBy"], json!([]));

    let gone =
        server.data(UNLINK, json!({ "from": G.learning, "kind": "INFLUENCED", "to": G.barrier })).await["unlink"]
            .clone();
    assert_eq!(
        (gone["how"].clone(), gone["systemCondition"].clone(), gone["on"].clone(), gone["strength"].clone()),
        (json!("REDUCED_BARRIER"), json!("RELATIONSHIPS"), json!("2022-02-02"), json!("WEAK"))
    );
    assert_eq!(gone["contribution"], "c");
    assert_eq!(gone["sources"], json!([{ "id": G.source2 }]));
    let barrier = server.data(&influenced_by("Barrier"), json!({ "id": G.barrier })).await;
    assert_eq!(barrier["node"]["influencedBy"]["totalCount"], 0);

    // Unlinking what is not there.
    for (from, kind, to) in [
        (G.principle, "UPHOLDS", G.value),
        (G.experiment, "GUIDED_BY", G.principle),
        ("acme:principle:missing", "UPHOLDS", G.value),
    ] {
        let body = server.gql(UNLINK, json!({ "from": from, "kind": kind, "to": to })).await;
        assert_eq!(error(&body)["code"], "NOT_FOUND", "{from} {kind} {to}: {body:#}");
    }
}

#[tokio::test]
async fn a_source_that_backs_an_influence_cannot_be_deleted() {
    let dir = temp_dir();
    let server = small_graph(dir.path()).await;
    let input = json!({ "from": G.learning, "to": G.value, "how": "SHIFTED_MINDSET", "systemCondition": "MENTAL_MODELS",
                        "on": "2022-05-05", "assertion": "SOURCED", "sources": [G.source] });
    server.data(RECORD, json!({ "i": input })).await;
    link(&server, G.principle, "CITES", G.source2).await;

    let delete = "mutation($id: ID!) { deleteNode(id: $id) { id removedRelationships } }";
    let body = server.gql(delete, json!({ "id": G.source })).await;
    assert_eq!(error(&body)["code"], "CONFLICT", "{body:#}");
    assert_eq!(node(&server, G.source, "title").await["title"], "Report", "the source stays");
    let influences = server.data(INFLUENCES, json!({ "id": G.learning })).await;
    assert_eq!(influences["node"]["influences"]["edges"][0]["sources"], json!([{ "id": G.source }]));

    // A source that is only cited can go, and its citations go with it.
    let data = server.data(delete, json!({ "id": G.source2 })).await;
    assert_eq!(data["deleteNode"]["removedRelationships"], 1);
    let principle = node(&server, G.principle, "... on Principle { cites { source { id } } }").await;
    assert_eq!(principle["cites"], json!([]));

    // Once the influence is gone, so may the source be.
    server.data(UNLINK, json!({ "from": G.learning, "kind": "INFLUENCED", "to": G.value })).await;
    let data = server.data(delete, json!({ "id": G.source })).await;
    assert_eq!(data["deleteNode"], json!({ "id": G.source, "removedRelationships": 0 }));
}

#[tokio::test]
async fn seed_sources_behind_influences_are_protected() {
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    let body =
        server.gql("mutation { deleteNode(id: \"cpi:source:mandarin-report-summary\") { id } }", json!({})).await;
    assert_eq!(error(&body)["code"], "CONFLICT", "{body:#}");
    let source = node(&server, "cpi:source:mandarin-report-summary", "... on Source { citedBy { node { id } } }").await;
    assert!(!source["citedBy"].as_array().unwrap().is_empty(), "its citations are still there");
}

#[tokio::test]
async fn deleting_a_learning_removes_its_influences_from_their_targets() {
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    let learning = "kc:learning:right-risk-review-makes-risk-discussable";
    let principle = "kc:principle:take-the-right-risks";
    let before =
        server.data(&influenced_by("Principle"), json!({ "id": principle })).await["node"]["influencedBy"].clone();
    let learnings: Vec<&str> =
        before["edges"].as_array().unwrap().iter().map(|e| e["learning"]["id"].as_str().unwrap()).collect();
    assert!(learnings.contains(&learning), "the seed has {learning} influencing {principle}");

    let count =
        server.data(INFLUENCES, json!({ "id": learning })).await["node"]["influences"]["totalCount"].as_u64().unwrap();
    let deleted = server
        .data("mutation($id: ID!) { deleteNode(id: $id) { removedRelationships } }", json!({ "id": learning }))
        .await;
    assert!(deleted["deleteNode"]["removedRelationships"].as_u64().unwrap() >= count);

    let after =
        server.data(&influenced_by("Principle"), json!({ "id": principle })).await["node"]["influencedBy"].clone();
    assert_eq!(after["totalCount"].as_u64().unwrap(), before["totalCount"].as_u64().unwrap() - 1);
    assert!(after["edges"].as_array().unwrap().iter().all(|e| e["learning"]["id"] != learning));
}
