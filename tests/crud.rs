//! Creating, reading, listing, filtering, updating and deleting every kind of
//! node through the GraphQL API, over a real server and a real SQLite file.

mod common;

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use common::{TestServer, temp_dir};
use serde_json::{Map, Value, json};

/// One kind of node as the API exposes it.
#[derive(Clone, Copy, Debug)]
struct Kind {
    /// The GraphQL type, e.g. `Principle`.
    name: &'static str,
    /// The kind's part of an id, e.g. `principle`.
    segment: &'static str,
    /// The list field, e.g. `principles`.
    list: &'static str,
    /// The list's filter input type.
    filter: &'static str,
}

const ORGANISATION: Kind =
    Kind { name: "Organisation", segment: "organisation", list: "organisations", filter: "NodeFilter" };
const VALUE: Kind = Kind { name: "Value", segment: "value", list: "values", filter: "NodeFilter" };
const PRINCIPLE: Kind = Kind { name: "Principle", segment: "principle", list: "principles", filter: "PrincipleFilter" };
const BARRIER: Kind = Kind { name: "Barrier", segment: "barrier", list: "barriers", filter: "BarrierFilter" };
const EXPERIMENT: Kind =
    Kind { name: "Experiment", segment: "experiment", list: "experiments", filter: "ExperimentFilter" };
const LEARNING: Kind = Kind { name: "Learning", segment: "learning", list: "learnings", filter: "LearningFilter" };
const SOURCE: Kind = Kind { name: "Source", segment: "source", list: "sources", filter: "NodeFilter" };

/// Every kind but Organisation: the kinds an organisation owns.
const OWNED: [Kind; 6] = [VALUE, PRINCIPLE, BARRIER, EXPERIMENT, LEARNING, SOURCE];

impl Kind {
    /// The fields a create input needs besides organisation and title.
    fn required(self) -> Value {
        match self.name {
            "Principle" => json!({ "statement": "We act on it." }),
            "Barrier" => json!({ "kind": "CULTURAL" }),
            "Experiment" => json!({ "hypothesis": "If we try, we learn." }),
            "Learning" => json!({ "statement": "We learnt it.", "kind": "MINDSET" }),
            "Source" => json!({ "url": "https://example.org/report" }),
            _ => json!({}),
        }
    }

    /// The kind's own fields, as a selection.
    fn own_fields(self) -> &'static str {
        match self.name {
            "Organisation" => "name slug jurisdiction purpose",
            "Value" => "name definition",
            "Principle" => "statement rationale status adoptedOn",
            "Barrier" => "kind severity",
            "Experiment" => "hypothesis status startedOn endedOn evidenceLevel failureNotes",
            "Learning" => "statement kind confidence embedding capturedOn embeddedOn",
            "Source" => "url publisher publishedOn quote locator",
            other => unreachable!("{other}"),
        }
    }

    /// A value for every own field the create input takes.
    fn full(self) -> Value {
        match self.name {
            "Organisation" => json!({ "jurisdiction": "Washington", "purpose": "Serve the county." }),
            "Value" => json!({ "definition": "Fair shares for all." }),
            "Principle" => json!({
                "statement": "Share power.", "rationale": "Because it works.",
                "status": "ADOPTED", "adoptedOn": "2021-11-17"
            }),
            "Barrier" => json!({ "kind": "STRUCTURAL", "severity": 4 }),
            "Experiment" => json!({
                "hypothesis": "Open doors help.", "status": "COMPLETED", "startedOn": "2022-01-01",
                "endedOn": "2022-06-30", "evidenceLevel": 2, "failureNotes": "Few managers came."
            }),
            "Learning" => json!({
                "statement": "Doors matter.", "kind": "RELATIONSHIP", "confidence": "LOW",
                "embedding": "EMBEDDED", "capturedOn": "2022-07-29", "embeddedOn": "2023-01-15"
            }),
            "Source" => json!({
                "url": "https://example.org/a", "publisher": "Example", "publishedOn": "2022-08-16",
                "quote": "It worked.", "locator": "p. 4"
            }),
            other => unreachable!("{other}"),
        }
    }
}

fn merge(mut base: Value, more: Value) -> Value {
    let (Value::Object(base_map), Value::Object(more_map)) = (&mut base, more) else { panic!("objects only") };
    base_map.extend(more_map);
    base
}

const NODE_FIELDS: &str = "id title description tags visibility assertion organisationSlug createdAt updatedAt";

/// Creates an organisation with the slug `org`.
async fn create_org(server: &TestServer, org: &str, title: &str) -> Value {
    let data = server
        .data(
            &format!("mutation($i: CreateOrganisationInput!) {{ createOrganisation(input: $i) {{ {NODE_FIELDS} }} }}"),
            json!({ "i": { "organisation": org, "title": title } }),
        )
        .await;
    data["createOrganisation"].clone()
}

/// The whole body of a create mutation of `kind` with `input`.
async fn try_create(server: &TestServer, kind: Kind, input: Value) -> Value {
    let query = format!(
        "mutation($i: Create{name}Input!) {{ create{name}(input: $i) {{ {NODE_FIELDS} {own} }} }}",
        name = kind.name,
        own = kind.own_fields()
    );
    server.gql(&query, json!({ "i": input })).await
}

/// Creates a node of `kind` owned by `org`, with the kind's required fields and `extra`.
async fn create(server: &TestServer, kind: Kind, org: &str, title: &str, extra: Value) -> Value {
    if kind.name == "Organisation" {
        panic!("use create_org");
    }
    let input = merge(merge(json!({ "organisation": org, "title": title }), kind.required()), extra);
    let body = try_create(server, kind, input).await;
    assert!(body.get("errors").is_none(), "creating a {} failed: {body:#}", kind.name);
    body["data"][format!("create{}", kind.name)].clone()
}

fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|n| n["id"].as_str().expect("an id").to_owned())
        .collect()
}

fn time(value: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(value.as_str().expect("a date-time")).expect("RFC 3339").with_timezone(&Utc)
}

fn first_error(body: &Value) -> &Value {
    let error = &body["errors"][0];
    assert!(error.is_object(), "expected an error, got {body:#}");
    error
}

// ---------------------------------------------------------------------------
// Create and read
// ---------------------------------------------------------------------------

#[tokio::test]
async fn every_kind_is_created_with_a_slug_derived_from_its_title() {
    let dir = temp_dir();
    let server = TestServer::empty(dir.path()).await;
    let org = create_org(&server, "acme", "Acme Council").await;
    assert_eq!(org["id"], "acme:organisation:acme");
    assert_eq!(org["organisationSlug"], "acme");

    for kind in OWNED {
        let created = create(&server, kind, "acme", "  Café & Culture: Round 2!  ", json!({})).await;
        let id = format!("acme:{}:cafe-culture-round-2", kind.segment);
        assert_eq!(created["id"], id.as_str(), "{}", kind.name);
        assert_eq!(created["title"], "Café & Culture: Round 2!", "the title is trimmed, nothing else");
        assert_eq!(created["organisationSlug"], "acme");
        assert_eq!(created["visibility"], "PUBLIC", "visibility defaults to PUBLIC");
        assert_eq!(created["assertion"], "INFERRED", "assertion defaults to INFERRED");
        assert_eq!(created["createdAt"], created["updatedAt"]);

        let data = server
            .data(
                "query($id: ID!) { node(id: $id) { __typename id title ... on Value { organisation { id } } } }",
                json!({ "id": id }),
            )
            .await;
        assert_eq!(data["node"]["__typename"], kind.name);
        assert_eq!(data["node"]["id"], id.as_str());
        if kind.name == "Value" {
            assert_eq!(data["node"]["organisation"]["id"], "acme:organisation:acme");
        }
    }
}

#[tokio::test]
async fn every_kind_is_created_with_an_explicit_slug_and_all_its_fields() {
    let dir = temp_dir();
    let server = TestServer::empty(dir.path()).await;
    create_org(&server, "acme", "Acme Council").await;

    for kind in OWNED {
        let input = merge(
            json!({
                "organisation": "acme", "slug": "my-own-slug-2", "title": "Anything at all",
                "description": "Longer words.", "tags": ["one", "two"],
                "visibility": "PARTNERS", "assertion": "SOURCED"
            }),
            kind.full(),
        );
        let body = try_create(&server, kind, input).await;
        assert!(body.get("errors").is_none(), "{}: {body:#}", kind.name);
        let created = &body["data"][format!("create{}", kind.name)];
        let id = format!("acme:{}:my-own-slug-2", kind.segment);
        assert_eq!(created["id"], id.as_str());

        // Everything written comes back from a fresh read.
        let query = format!(
            "query($id: ID!) {{ node(id: $id) {{ {NODE_FIELDS} ... on {name} {{ {own} }} }} }}",
            name = kind.name,
            own = kind.own_fields()
        );
        let read = server.data(&query, json!({ "id": id })).await["node"].clone();
        assert_eq!(read, *created, "{}: the read differs from what the create returned", kind.name);
        assert_eq!(read["description"], "Longer words.");
        assert_eq!(read["tags"], json!(["one", "two"]));
        assert_eq!(read["visibility"], "PARTNERS");
        assert_eq!(read["assertion"], "SOURCED");
        for (field, value) in kind.full().as_object().unwrap() {
            assert_eq!(&read[field], value, "{}.{field}", kind.name);
        }
    }
}

#[tokio::test]
async fn an_organisation_id_is_its_own_slug() {
    let dir = temp_dir();
    let server = TestServer::empty(dir.path()).await;
    let org = create_org(&server, "acme", "Acme Council").await;
    assert_eq!(org["id"], "acme:organisation:acme");

    let query = "mutation($i: CreateOrganisationInput!) { createOrganisation(input: $i) { id slug name title } }";
    let data =
        server.data(query, json!({ "i": { "organisation": "beta", "slug": "beta", "title": "Beta Borough" } })).await;
    assert_eq!(
        data["createOrganisation"],
        json!({ "id": "beta:organisation:beta", "slug": "beta", "name": "Beta Borough", "title": "Beta Borough" })
    );

    let body = server.gql(query, json!({ "i": { "organisation": "gamma", "slug": "other", "title": "Gamma" } })).await;
    assert_eq!(first_error(&body)["extensions"]["code"], "BAD_USER_INPUT");
    assert_eq!(first_error(&body)["extensions"]["field"], "slug");
    let data = server.data("{ organisations { totalCount nodes { id } } }", json!({})).await;
    assert_eq!(data["organisations"]["totalCount"], 2, "the refused organisation was not created");
}

#[tokio::test]
async fn a_node_of_an_unknown_organisation_is_refused_and_not_created() {
    let dir = temp_dir();
    let server = TestServer::empty(dir.path()).await;
    create_org(&server, "acme", "Acme Council").await;
    for kind in OWNED {
        let input = merge(json!({ "organisation": "nobody", "title": "Orphan" }), kind.required());
        let body = try_create(&server, kind, input).await;
        let error = first_error(&body);
        assert_eq!(error["extensions"]["code"], "BAD_USER_INPUT", "{}: {body:#}", kind.name);
        assert_eq!(error["extensions"]["reason"], "UNKNOWN_ORGANISATION", "{}", kind.name);
        assert_eq!(error["extensions"]["field"], "organisation");
        let id = format!("nobody:{}:orphan", kind.segment);
        let data = server.data("query($id: ID!) { node(id: $id) { id } }", json!({ "id": id })).await;
        assert_eq!(data["node"], Value::Null);
    }
}

#[tokio::test]
async fn a_duplicate_id_is_a_conflict_and_leaves_the_first_node_alone() {
    let dir = temp_dir();
    let server = TestServer::empty(dir.path()).await;
    create_org(&server, "acme", "Acme Council").await;
    let body = server
        .gql(
            "mutation($i: CreateOrganisationInput!) { createOrganisation(input: $i) { id } }",
            json!({ "i": { "organisation": "acme", "title": "Acme again" } }),
        )
        .await;
    assert_eq!(first_error(&body)["extensions"]["code"], "CONFLICT", "{body:#}");

    for kind in OWNED {
        let first = create(&server, kind, "acme", "Same title", json!({ "description": "first" })).await;
        // The same title derives the same slug; an explicit slug may collide too.
        for input in [
            json!({ "organisation": "acme", "title": "Same title", "description": "second" }),
            json!({ "organisation": "acme", "title": "Other title", "slug": "same-title" }),
        ] {
            let body = try_create(&server, kind, merge(input, kind.required())).await;
            assert_eq!(first_error(&body)["extensions"]["code"], "CONFLICT", "{}: {body:#}", kind.name);
        }
        let data =
            server.data("query($id: ID!) { node(id: $id) { title description } }", json!({ "id": first["id"] })).await;
        assert_eq!(data["node"], json!({ "title": "Same title", "description": "first" }));
        let count = server.data(&format!("{{ {} {{ totalCount }} }}", kind.list), json!({})).await;
        assert_eq!(count[kind.list]["totalCount"], 1, "{}", kind.name);
    }
}

#[tokio::test]
async fn nodes_by_ids_keeps_the_order_asked_and_gives_null_for_unknown_ids() {
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    let asked = [
        "kc:value:trust",
        "kc:principle:take-the-right-risks",
        "kc:principle:no-such-principle",
        "kc:organisation:kc",
        "cpi:learning:innovation-is-a-mindset",
        "kc:barrier:departmental-silos",
        "kc:experiment:fail-forward-retrospectives",
        "zz:source:unknown",
        "kc:source:true-north",
        "kc:value:trust",
    ];
    let data = server.data("query($ids: [ID!]!) { nodes(ids: $ids) { __typename id } }", json!({ "ids": asked })).await;
    let got = data["nodes"].as_array().unwrap();
    assert_eq!(got.len(), asked.len());
    let types = ["Value", "Principle", "", "Organisation", "Learning", "Barrier", "Experiment", "", "Source", "Value"];
    for ((id, node), ty) in asked.iter().zip(got).zip(types) {
        if ty.is_empty() {
            assert_eq!(*node, Value::Null, "{id} does not exist");
        } else {
            assert_eq!(node["id"], *id);
            assert_eq!(node["__typename"], ty);
        }
    }

    let data = server.data("{ node(id: \"kc:value:no-such-value\") { id } }", json!({})).await;
    assert_eq!(data["node"], Value::Null);
    let data = server.data("{ nodes(ids: []) { id } }", json!({})).await;
    assert_eq!(data["nodes"], json!([]));
}

// ---------------------------------------------------------------------------
// Lists: pagination, order, totalCount
// ---------------------------------------------------------------------------

/// Titles in no particular order, one repeated so that the tie is broken by id.
const TITLES: [&str; 7] = ["Delta", "Bravo", "Foxtrot", "Alpha", "Echo", "Bravo", "Charlie"];

/// Creates seven nodes of `kind` and returns (id, title, createdAt) in creation order.
async fn seven_of(server: &TestServer, kind: Kind) -> Vec<(String, String, DateTime<Utc>)> {
    let mut made = Vec::new();
    if kind.name != "Organisation" {
        create_org(server, "acme", "Acme Council").await;
    }
    for (i, title) in TITLES.iter().enumerate() {
        let node = if kind.name == "Organisation" {
            create_org(server, &format!("org{i}"), title).await
        } else {
            create(server, kind, "acme", title, json!({ "slug": format!("n{i}") })).await
        };
        made.push((node["id"].as_str().unwrap().to_owned(), title.to_string(), time(&node["createdAt"])));
    }
    made
}

async fn page(server: &TestServer, kind: Kind, args: &str) -> Value {
    let args = if args.is_empty() { String::new() } else { format!("({args})") };
    let query = format!(
        "{{ {list}{args} {{ totalCount edges {{ cursor node {{ id title createdAt }} }} \
         nodes {{ id }} pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }} }} }}",
        list = kind.list
    );
    server.data(&query, json!({})).await[kind.list].clone()
}

async fn page_with(server: &TestServer, kind: Kind, args: &str, after: Option<&str>, before: Option<&str>) -> Value {
    let query = format!(
        "query($after: String, $before: String) {{ {list}({args}, after: $after, before: $before) {{ totalCount \
         edges {{ cursor node {{ id title createdAt }} }} nodes {{ id }} \
         pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }} }} }}",
        list = kind.list
    );
    server.data(&query, json!({ "after": after, "before": before })).await[kind.list].clone()
}

/// Walks a list forwards in pages of `size`, checking page info on the way.
async fn walk_forwards(server: &TestServer, kind: Kind, order: &str, size: usize) -> Vec<String> {
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    for round in 0.. {
        assert!(round < 20, "the list never ends");
        let args = format!("first: {size}{order}");
        let page = page_with(server, kind, &args, after.as_deref(), None).await;
        let edges = page["edges"].as_array().unwrap();
        assert!(edges.len() <= size);
        assert_eq!(ids(&page["nodes"]), edges.iter().map(|e| e["node"]["id"].as_str().unwrap()).collect::<Vec<_>>());
        assert_eq!(page["pageInfo"]["hasPreviousPage"], round > 0, "hasPreviousPage on page {round}");
        if let Some(first) = edges.first() {
            assert_eq!(page["pageInfo"]["startCursor"], first["cursor"]);
            assert_eq!(page["pageInfo"]["endCursor"], edges.last().unwrap()["cursor"]);
        }
        seen.extend(edges.iter().map(|e| e["node"]["id"].as_str().unwrap().to_owned()));
        if page["pageInfo"]["hasNextPage"] == false {
            break;
        }
        assert_eq!(edges.len(), size, "a page before the last is full");
        after = Some(page["pageInfo"]["endCursor"].as_str().unwrap().to_owned());
    }
    seen
}

/// Walks a list backwards from its end in pages of `size`; returns it first to last.
async fn walk_backwards(server: &TestServer, kind: Kind, order: &str, size: usize) -> Vec<String> {
    let mut pages: Vec<Vec<String>> = Vec::new();
    let mut before: Option<String> = None;
    for round in 0.. {
        assert!(round < 20, "the list never ends");
        let args = format!("last: {size}{order}");
        let page = page_with(server, kind, &args, None, before.as_deref()).await;
        let edges = page["edges"].as_array().unwrap();
        assert!(edges.len() <= size);
        assert_eq!(page["pageInfo"]["hasNextPage"], round > 0, "hasNextPage on backward page {round}");
        pages.push(edges.iter().map(|e| e["node"]["id"].as_str().unwrap().to_owned()).collect());
        if page["pageInfo"]["hasPreviousPage"] == false {
            break;
        }
        assert_eq!(edges.len(), size, "a page before the first is full");
        before = Some(page["pageInfo"]["startCursor"].as_str().unwrap().to_owned());
    }
    pages.into_iter().rev().flatten().collect()
}

fn assert_no_duplicates(list: &[String]) {
    let unique: BTreeSet<&String> = list.iter().collect();
    assert_eq!(unique.len(), list.len(), "duplicates in {list:?}");
}

async fn lists_page_both_ways_in_order(kind: Kind) {
    let dir = temp_dir();
    let server = TestServer::empty(dir.path()).await;
    let made = seven_of(&server, kind).await;

    // By title, ties broken by id.
    let mut by_title = made.clone();
    by_title.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
    let by_title: Vec<String> = by_title.into_iter().map(|m| m.0).collect();

    let whole = page(&server, kind, "first: 100").await;
    assert_eq!(whole["totalCount"], made.len());
    assert_eq!(ids(&whole["nodes"]), by_title, "{}: the default order is by title", kind.name);
    assert_eq!(whole["pageInfo"]["hasNextPage"], false);
    assert_eq!(whole["pageInfo"]["hasPreviousPage"], false);
    let default = page(&server, kind, "").await;
    assert_eq!(ids(&default["nodes"]), by_title, "no arguments gives the first page");

    for size in [2, 3] {
        let forwards = walk_forwards(&server, kind, "", size).await;
        assert_no_duplicates(&forwards);
        assert_eq!(forwards, by_title, "{}: forwards in pages of {size}", kind.name);
        let backwards = walk_backwards(&server, kind, "", size).await;
        assert_no_duplicates(&backwards);
        assert_eq!(backwards, by_title, "{}: backwards in pages of {size}", kind.name);
    }

    // Newest first.
    let mut newest = made.clone();
    newest.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| b.0.cmp(&a.0)));
    let newest: Vec<String> = newest.into_iter().map(|m| m.0).collect();
    assert_ne!(newest, by_title, "the test needs the two orders to differ");
    let order = ", orderBy: { field: CREATED_AT, direction: DESC }";
    let whole = page(&server, kind, &format!("first: 100{order}")).await;
    assert_eq!(ids(&whole["nodes"]), newest, "{}: CREATED_AT DESC", kind.name);
    assert_eq!(walk_forwards(&server, kind, order, 2).await, newest, "{}: CREATED_AT DESC forwards", kind.name);
    assert_eq!(walk_backwards(&server, kind, order, 3).await, newest, "{}: CREATED_AT DESC backwards", kind.name);

    // Descending by title is the exact reverse of ascending.
    let order = ", orderBy: { field: TITLE, direction: DESC }";
    let mut reversed = by_title.clone();
    reversed.reverse();
    assert_eq!(walk_forwards(&server, kind, order, 3).await, reversed, "{}: TITLE DESC", kind.name);

    // A cursor from one order is refused by another.
    let title_page = page(&server, kind, "first: 2").await;
    let cursor = title_page["pageInfo"]["endCursor"].as_str().unwrap().to_owned();
    let body = server
        .gql(
            &format!(
                "query($c: String) {{ {}(first: 2, after: $c, orderBy: {{ field: ID }}) {{ totalCount }} }}",
                kind.list
            ),
            json!({ "c": cursor }),
        )
        .await;
    assert_eq!(first_error(&body)["extensions"]["code"], "BAD_USER_INPUT", "{body:#}");
    assert_eq!(first_error(&body)["extensions"]["field"], "after");
}

#[tokio::test]
async fn organisations_page_both_ways_in_order() {
    lists_page_both_ways_in_order(ORGANISATION).await;
}

#[tokio::test]
async fn values_page_both_ways_in_order() {
    lists_page_both_ways_in_order(VALUE).await;
}

#[tokio::test]
async fn principles_page_both_ways_in_order() {
    lists_page_both_ways_in_order(PRINCIPLE).await;
}

#[tokio::test]
async fn barriers_page_both_ways_in_order() {
    lists_page_both_ways_in_order(BARRIER).await;
}

#[tokio::test]
async fn experiments_page_both_ways_in_order() {
    lists_page_both_ways_in_order(EXPERIMENT).await;
}

#[tokio::test]
async fn learnings_page_both_ways_in_order() {
    lists_page_both_ways_in_order(LEARNING).await;
}

#[tokio::test]
async fn sources_page_both_ways_in_order() {
    lists_page_both_ways_in_order(SOURCE).await;
}

#[tokio::test]
async fn page_sizes_outside_zero_to_a_hundred_and_first_with_last_are_refused() {
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    for args in ["first: -1", "first: 101", "last: 101", "first: 2, last: 2"] {
        let body = server.gql(&format!("{{ values({args}) {{ totalCount }} }}"), json!({})).await;
        assert_eq!(first_error(&body)["extensions"]["code"], "BAD_USER_INPUT", "{args}: {body:#}");
    }
    let body = server.gql("{ values(after: \"not-a-cursor\") { totalCount } }", json!({})).await;
    assert_eq!(first_error(&body)["extensions"]["code"], "BAD_USER_INPUT");
    assert_eq!(first_error(&body)["extensions"]["field"], "after");
}

// ---------------------------------------------------------------------------
// Filters
// ---------------------------------------------------------------------------

/// The seed's nodes, parsed, for computing what a filter should select.
fn seed_nodes() -> Vec<Map<String, Value>> {
    let seed: Value = serde_json::from_str(pvgraph::seed::KING_COUNTY).unwrap();
    seed["nodes"].as_array().unwrap().iter().map(|n| n.as_object().unwrap().clone()).collect()
}

fn seed_ids_where(segment: &str, keep: impl Fn(&Map<String, Value>) -> bool) -> BTreeSet<String> {
    seed_nodes()
        .into_iter()
        .filter(|n| n["id"].as_str().unwrap().split(':').nth(1) == Some(segment))
        .filter(|n| keep(n))
        .map(|n| n["id"].as_str().unwrap().to_owned())
        .collect()
}

/// The ids a filtered list selects, checking that totalCount agrees.
async fn selected(server: &TestServer, kind: Kind, filter: Value) -> BTreeSet<String> {
    let query = format!(
        "query($f: {filter}) {{ {list}(first: 100, filter: $f) {{ totalCount nodes {{ id }} }} }}",
        filter = kind.filter,
        list = kind.list
    );
    let data = server.data(&query, json!({ "f": filter })).await;
    let found: Vec<String> = ids(&data[kind.list]["nodes"]);
    assert_eq!(
        data[kind.list]["totalCount"],
        found.len(),
        "{}: totalCount agrees with the list for {filter}",
        kind.name
    );
    found.into_iter().collect()
}

fn set(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

async fn common_filters_select(kind: Kind) {
    let dir = temp_dir();
    let server = TestServer::empty(dir.path()).await;
    let mut made = Vec::new();
    if kind.name == "Organisation" {
        for (org, title, tags) in [
            ("acme", "Project Alpha", json!(["red"])),
            ("beta", "ALPHABET soup", json!(["blue", "red"])),
            ("gamma", "50% done", json!([])),
            ("delta", "Fifty done", json!(["green"])),
        ] {
            let query = "mutation($i: CreateOrganisationInput!) { createOrganisation(input: $i) { id } }";
            let data = server.data(query, json!({ "i": { "organisation": org, "title": title, "tags": tags } })).await;
            made.push(data["createOrganisation"]["id"].as_str().unwrap().to_owned());
        }
    } else {
        create_org(&server, "acme", "Acme").await;
        create_org(&server, "beta", "Beta").await;
        for (org, title, tags) in [
            ("acme", "Project Alpha", json!(["red"])),
            ("beta", "ALPHABET soup", json!(["blue", "red"])),
            ("acme", "50% done", json!([])),
            ("beta", "Fifty done", json!(["green"])),
        ] {
            let node = create(&server, kind, org, title, json!({ "tags": tags })).await;
            made.push(node["id"].as_str().unwrap().to_owned());
        }
    }
    let [alpha, alphabet, percent, fifty] = [&made[0], &made[1], &made[2], &made[3]].map(|s| s.as_str());

    assert_eq!(selected(&server, kind, json!({})).await, set(&[alpha, alphabet, percent, fifty]));
    let orgs = if kind.name == "Organisation" { set(&[alpha]) } else { set(&[alpha, percent]) };
    assert_eq!(selected(&server, kind, json!({ "organisation": ["acme"] })).await, orgs, "{}", kind.name);
    assert_eq!(selected(&server, kind, json!({ "organisation": ["nobody"] })).await, set(&[]));
    // Case is ignored, both ways.
    assert_eq!(selected(&server, kind, json!({ "titleContains": "alpha" })).await, set(&[alpha, alphabet]));
    assert_eq!(selected(&server, kind, json!({ "titleContains": "aLpHaBeT" })).await, set(&[alphabet]));
    // LIKE's wildcards are plain characters.
    assert_eq!(selected(&server, kind, json!({ "titleContains": "%" })).await, set(&[percent]));
    assert_eq!(selected(&server, kind, json!({ "titleContains": "_" })).await, set(&[]));
    assert_eq!(selected(&server, kind, json!({ "titleContains": "" })).await.len(), 4, "an empty text selects all");
    // At least one of the tags.
    assert_eq!(selected(&server, kind, json!({ "tags": ["red"] })).await, set(&[alpha, alphabet]));
    assert_eq!(selected(&server, kind, json!({ "tags": ["blue", "green"] })).await, set(&[alphabet, fifty]));
    assert_eq!(selected(&server, kind, json!({ "tags": ["RED"] })).await, set(&[]), "tags match exactly");
    // Filters combine with AND.
    assert_eq!(
        selected(&server, kind, json!({ "tags": ["red"], "titleContains": "project" })).await,
        set(&[alpha]),
        "{}",
        kind.name
    );
}

#[tokio::test]
async fn organisations_filter_by_organisation_title_and_tags() {
    common_filters_select(ORGANISATION).await;
}

#[tokio::test]
async fn values_filter_by_organisation_title_and_tags() {
    common_filters_select(VALUE).await;
}

#[tokio::test]
async fn principles_filter_by_organisation_title_and_tags() {
    common_filters_select(PRINCIPLE).await;
}

#[tokio::test]
async fn barriers_filter_by_organisation_title_and_tags() {
    common_filters_select(BARRIER).await;
}

#[tokio::test]
async fn experiments_filter_by_organisation_title_and_tags() {
    common_filters_select(EXPERIMENT).await;
}

#[tokio::test]
async fn learnings_filter_by_organisation_title_and_tags() {
    common_filters_select(LEARNING).await;
}

#[tokio::test]
async fn sources_filter_by_organisation_title_and_tags() {
    common_filters_select(SOURCE).await;
}

#[tokio::test]
async fn seed_lists_filter_by_organisation_and_tags() {
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    for kind in [VALUE, PRINCIPLE, BARRIER, EXPERIMENT, LEARNING, SOURCE, ORGANISATION] {
        for org in ["kc", "cpi"] {
            let expected = seed_ids_where(kind.segment, |n| n["id"].as_str().unwrap().starts_with(&format!("{org}:")));
            assert_eq!(
                selected(&server, kind, json!({ "organisation": [org] })).await,
                expected,
                "{} of {org}",
                kind.name
            );
        }
        let expected = seed_ids_where(kind.segment, |n| {
            n.get("tags").and_then(Value::as_array).is_some_and(|t| t.iter().any(|t| t == "metro" || t == "cpi"))
        });
        assert_eq!(selected(&server, kind, json!({ "tags": ["metro", "cpi"] })).await, expected, "{}", kind.name);
    }
}

fn field_is(n: &Map<String, Value>, field: &str, words: &[&str]) -> bool {
    n.get(field).and_then(Value::as_str).is_some_and(|w| words.contains(&w))
}

fn field_at_least(n: &Map<String, Value>, field: &str, low: i64) -> bool {
    n.get(field).and_then(Value::as_i64).is_some_and(|v| v >= low)
}

#[tokio::test]
async fn principles_filter_by_status() {
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    for words in [vec!["ADOPTED"], vec!["REVISED", "RETIRED"], vec!["DRAFT"]] {
        let expected = seed_ids_where("principle", |n| field_is(n, "status", &words));
        assert_eq!(selected(&server, PRINCIPLE, json!({ "status": words })).await, expected, "{words:?}");
    }
    assert!(!seed_ids_where("principle", |n| field_is(n, "status", &["REVISED"])).is_empty());

    // A new principle without a status is a DRAFT, and found as one.
    create(&server, PRINCIPLE, "kc", "A draft of ours", json!({})).await;
    assert_eq!(
        selected(&server, PRINCIPLE, json!({ "status": ["DRAFT"] })).await,
        set(&["kc:principle:a-draft-of-ours"])
    );
    let both = selected(&server, PRINCIPLE, json!({ "status": ["DRAFT"], "titleContains": "equit" })).await;
    assert_eq!(both, set(&[]), "status and title combine with AND");
}

#[tokio::test]
async fn barriers_filter_by_kind_and_severity() {
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    for words in [vec!["CULTURAL"], vec!["STRUCTURAL", "INSTITUTIONAL"], vec!["PERSONAL"]] {
        let expected = seed_ids_where("barrier", |n| field_is(n, "kind", &words));
        assert!(!expected.is_empty());
        assert_eq!(selected(&server, BARRIER, json!({ "kind": words })).await, expected, "{words:?}");
    }
    for low in [1, 3, 4, 5] {
        let expected = seed_ids_where("barrier", |n| field_at_least(n, "severity", low));
        assert_eq!(selected(&server, BARRIER, json!({ "severityAtLeast": low })).await, expected, "severity ≥ {low}");
    }
    let expected =
        seed_ids_where("barrier", |n| field_is(n, "kind", &["CULTURAL"]) && field_at_least(n, "severity", 5));
    assert_eq!(expected.len(), 1);
    assert_eq!(selected(&server, BARRIER, json!({ "kind": ["CULTURAL"], "severityAtLeast": 5 })).await, expected);

    // A barrier without a severity passes no severity test.
    create(&server, BARRIER, "kc", "Unrated barrier", json!({})).await;
    assert!(!selected(&server, BARRIER, json!({ "severityAtLeast": 1 })).await.contains("kc:barrier:unrated-barrier"));
}

#[tokio::test]
async fn experiments_filter_by_status_and_evidence_level() {
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    for words in [vec!["COMPLETED"], vec!["PLANNED", "RUNNING"], vec!["STOPPED"]] {
        let expected = seed_ids_where("experiment", |n| field_is(n, "status", &words));
        assert_eq!(selected(&server, EXPERIMENT, json!({ "status": words })).await, expected, "{words:?}");
    }
    for low in [1, 2, 3] {
        let expected = seed_ids_where("experiment", |n| field_at_least(n, "evidenceLevel", low));
        assert_eq!(selected(&server, EXPERIMENT, json!({ "evidenceLevelAtLeast": low })).await, expected, "≥ {low}");
    }
    assert_eq!(
        selected(&server, EXPERIMENT, json!({ "evidenceLevelAtLeast": 2 })).await,
        set(&["kc:experiment:reimagining-public-value-programme"])
    );
    let expected = seed_ids_where("experiment", |n| {
        field_is(n, "status", &["RUNNING", "COMPLETED"]) && field_at_least(n, "evidenceLevel", 1)
    });
    let got = selected(&server, EXPERIMENT, json!({ "status": ["RUNNING", "COMPLETED"], "evidenceLevelAtLeast": 1 }));
    assert_eq!(got.await, expected);
}

#[tokio::test]
async fn learnings_filter_by_kind_confidence_and_embedding() {
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    for words in [vec!["MINDSET"], vec!["PROCESS", "POLICY"], vec!["RELATIONSHIP", "BEHAVIOUR"]] {
        let expected = seed_ids_where("learning", |n| field_is(n, "kind", &words));
        assert_eq!(selected(&server, LEARNING, json!({ "kind": words })).await, expected, "kind {words:?}");
    }
    for words in [vec!["MODERATE"], vec!["LOW", "VERY_LOW"], vec!["HIGH"]] {
        let expected = seed_ids_where("learning", |n| field_is(n, "confidence", &words));
        assert_eq!(selected(&server, LEARNING, json!({ "confidence": words })).await, expected, "conf {words:?}");
    }
    for words in [vec!["EMBEDDED"], vec!["CAPTURED", "SHARED"]] {
        let expected = seed_ids_where("learning", |n| field_is(n, "embedding", &words));
        assert_eq!(selected(&server, LEARNING, json!({ "embedding": words })).await, expected, "emb {words:?}");
    }
    let expected = seed_ids_where("learning", |n| {
        field_is(n, "kind", &["MINDSET"])
            && field_is(n, "confidence", &["MODERATE"])
            && n["id"].as_str().unwrap().starts_with("kc:")
    });
    let got =
        selected(&server, LEARNING, json!({ "kind": ["MINDSET"], "confidence": ["MODERATE"], "organisation": ["kc"] }));
    assert_eq!(got.await, expected);

    // A new learning without an embedding is CAPTURED, and found as one.
    create(&server, LEARNING, "kc", "Fresh learning", json!({})).await;
    assert!(
        selected(&server, LEARNING, json!({ "embedding": ["CAPTURED"] })).await.contains("kc:learning:fresh-learning")
    );
}

/// The schema says `titleContains` ignores case; SQLite's LIKE only folds ASCII letters.
#[tokio::test]
async fn title_contains_ignores_case_beyond_ascii() {
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    create(&server, VALUE, "kc", "Équité territoriale", json!({ "slug": "equite-territoriale" })).await;
    assert_eq!(
        selected(&server, VALUE, json!({ "titleContains": "équité" })).await,
        set(&["kc:value:equite-territoriale"])
    );
}

// ---------------------------------------------------------------------------
// Update
// ---------------------------------------------------------------------------

/// For each kind: an optional own field with a value, and a required own field.
fn optional_and_required(kind: Kind) -> (&'static str, Value, &'static str) {
    match kind.name {
        "Organisation" => ("jurisdiction", json!("Washington"), "title"),
        "Value" => ("definition", json!("Fair shares."), "title"),
        "Principle" => ("rationale", json!("Because."), "statement"),
        "Barrier" => ("severity", json!(3), "kind"),
        "Experiment" => ("failureNotes", json!("It failed twice."), "hypothesis"),
        "Learning" => ("confidence", json!("HIGH"), "statement"),
        "Source" => ("publisher", json!("Example Press"), "url"),
        other => unreachable!("{other}"),
    }
}

async fn try_update(server: &TestServer, kind: Kind, id: &str, input: Value) -> Value {
    let query = format!(
        "mutation($id: ID!, $i: Update{name}Input!) {{ update{name}(id: $id, input: $i) {{ {NODE_FIELDS} {own} }} }}",
        name = kind.name,
        own = kind.own_fields()
    );
    server.gql(&query, json!({ "id": id, "i": input })).await
}

async fn read(server: &TestServer, kind: Kind, id: &str) -> Value {
    let query = format!(
        "query($id: ID!) {{ node(id: $id) {{ {NODE_FIELDS} ... on {name} {{ {own} }} }} }}",
        name = kind.name,
        own = kind.own_fields()
    );
    server.data(&query, json!({ "id": id })).await["node"].clone()
}

async fn updates_merge(kind: Kind) {
    let dir = temp_dir();
    let server = TestServer::empty(dir.path()).await;
    let (optional, value, required) = optional_and_required(kind);
    let extra = json!({ "description": "Kept words.", "tags": ["keep"], optional: value.clone() });
    let id = if kind.name == "Organisation" {
        let query =
            format!("mutation($i: CreateOrganisationInput!) {{ createOrganisation(input: $i) {{ {NODE_FIELDS} }} }}");
        let input = merge(json!({ "organisation": "acme", "title": "Before" }), extra);
        server.data(&query, json!({ "i": input })).await["createOrganisation"]["id"].as_str().unwrap().to_owned()
    } else {
        create_org(&server, "acme", "Acme").await;
        create(&server, kind, "acme", "Before", extra).await["id"].as_str().unwrap().to_owned()
    };
    let before = read(&server, kind, &id).await;
    assert_eq!(before[optional], value);

    // A field left out stays as it is.
    let body = try_update(&server, kind, &id, json!({ "title": "After" })).await;
    assert!(body.get("errors").is_none(), "{}: {body:#}", kind.name);
    let after = read(&server, kind, &id).await;
    assert_eq!(after, body["data"][format!("update{}", kind.name)], "the update returns the node as stored");
    assert_eq!(after["title"], "After");
    assert_eq!(after["id"], id.as_str(), "a new title does not change the id");
    assert_eq!(after["description"], "Kept words.");
    assert_eq!(after["tags"], json!(["keep"]));
    assert_eq!(after[optional], value, "{}.{optional} was kept", kind.name);
    if required != "title" {
        assert_eq!(after[required], before[required]);
    }
    assert_eq!(after["createdAt"], before["createdAt"], "createdAt never changes");
    assert!(time(&after["updatedAt"]) > time(&before["updatedAt"]), "updatedAt moves on: {before} → {after}");

    // A field set to null is cleared.
    let body = try_update(&server, kind, &id, json!({ optional: null, "tags": null })).await;
    assert!(body.get("errors").is_none(), "{}: {body:#}", kind.name);
    let cleared = read(&server, kind, &id).await;
    assert_eq!(cleared[optional], Value::Null, "{}.{optional} was cleared", kind.name);
    assert_eq!(cleared["tags"], json!([]));
    assert_eq!(cleared["description"], "Kept words.");
    assert_eq!(cleared["title"], "After");
    assert_eq!(cleared["createdAt"], before["createdAt"]);

    // A required field cannot be cleared, and a refused update changes nothing.
    for field in [required, "title"] {
        let body = try_update(&server, kind, &id, json!({ field: null, "description": "Lost words." })).await;
        assert_eq!(first_error(&body)["extensions"]["code"], "BAD_USER_INPUT", "{}.{field}: {body:#}", kind.name);
        assert_eq!(read(&server, kind, &id).await, cleared, "{}: a refused update left the node as it was", kind.name);
    }

    // Values are checked as on create.
    let body = try_update(&server, kind, &id, json!({ "title": "x".repeat(201) })).await;
    assert_eq!(first_error(&body)["extensions"]["field"], "title");

    // The id must be of the kind the mutation changes.
    let other = if kind.name == "Value" { "acme:principle:before" } else { "acme:value:before" };
    let body = try_update(&server, kind, other, json!({ "title": "Wrong kind" })).await;
    assert_eq!(first_error(&body)["extensions"]["code"], "BAD_USER_INPUT", "{body:#}");
    assert_eq!(first_error(&body)["extensions"]["field"], "id");

    // An unknown node of the right kind is not found.
    let missing = if kind.name == "Organisation" {
        "nobody:organisation:nobody".to_owned()
    } else {
        format!("acme:{}:missing", kind.segment)
    };
    let body = try_update(&server, kind, &missing, json!({ "title": "Nobody" })).await;
    assert_eq!(first_error(&body)["extensions"]["code"], "NOT_FOUND", "{body:#}");
}

#[tokio::test]
async fn organisation_updates_merge() {
    updates_merge(ORGANISATION).await;
}

#[tokio::test]
async fn value_updates_merge() {
    updates_merge(VALUE).await;
}

#[tokio::test]
async fn principle_updates_merge() {
    updates_merge(PRINCIPLE).await;
}

#[tokio::test]
async fn barrier_updates_merge() {
    updates_merge(BARRIER).await;
}

#[tokio::test]
async fn experiment_updates_merge() {
    updates_merge(EXPERIMENT).await;
}

#[tokio::test]
async fn learning_updates_merge() {
    updates_merge(LEARNING).await;
}

#[tokio::test]
async fn source_updates_merge() {
    updates_merge(SOURCE).await;
}

#[tokio::test]
async fn updating_a_node_of_another_kind_leaves_both_alone() {
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    let before = read(&server, VALUE, "kc:value:trust").await;
    let body = try_update(&server, PRINCIPLE, "kc:value:trust", json!({ "title": "Hijacked" })).await;
    let error = first_error(&body);
    assert_eq!(error["extensions"]["code"], "BAD_USER_INPUT");
    assert_eq!(error["extensions"]["field"], "id");
    assert_eq!(read(&server, VALUE, "kc:value:trust").await, before);
}

#[tokio::test]
async fn updates_keep_the_rules_of_each_kind() {
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    let cases = [
        (BARRIER, "kc:barrier:departmental-silos", json!({ "severity": 6 }), "severity"),
        (EXPERIMENT, "kc:experiment:open-door-conversations", json!({ "evidenceLevel": 0 }), "evidenceLevel"),
        (
            EXPERIMENT,
            "kc:experiment:open-door-conversations",
            json!({ "startedOn": "2022-05-01", "endedOn": "2022-04-30" }),
            "endedOn",
        ),
        (SOURCE, "kc:source:true-north", json!({ "url": "ftp://example.org/x" }), "url"),
        (
            LEARNING,
            "kc:learning:small-safe-failures-build-tolerance",
            json!({ "embeddedOn": "2023-01-01" }),
            "embeddedOn",
        ),
    ];
    for (kind, id, input, field) in cases {
        let before = read(&server, kind, id).await;
        let body = try_update(&server, kind, id, input.clone()).await;
        let error = first_error(&body);
        assert_eq!(error["extensions"]["code"], "BAD_USER_INPUT", "{input}: {body:#}");
        assert_eq!(error["extensions"]["field"], field, "{input}");
        assert_eq!(read(&server, kind, id).await, before, "{input} changed nothing");
    }
}

/// Clearing a required field is refused, and the error names the field.
#[tokio::test]
async fn a_missing_required_field_is_named_in_the_error() {
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    let body = try_update(&server, PRINCIPLE, "kc:principle:take-the-right-risks", json!({ "statement": null })).await;
    let error = first_error(&body);
    assert_eq!(error["extensions"]["code"], "BAD_USER_INPUT");
    assert_eq!(error["extensions"]["field"], "statement", "{body:#}");
    assert!(!error["message"].as_str().unwrap().starts_with(':'), "{body:#}");

    // The schema marks it required, so leaving it out of a create fails validation and names it.
    let body = try_create(&server, PRINCIPLE, json!({ "organisation": "kc", "title": "No statement" })).await;
    let error = first_error(&body);
    assert_eq!(error["extensions"]["code"], "GRAPHQL_VALIDATION_FAILED", "{body:#}");
    assert!(error["message"].as_str().unwrap().contains("statement"), "{body:#}");
}

// ---------------------------------------------------------------------------
// Delete
// ---------------------------------------------------------------------------

/// The seed's relationships touching `id`, as (kind, from, to).
fn seed_edges_of(id: &str) -> Vec<(String, String, String)> {
    let seed: Value = serde_json::from_str(pvgraph::seed::KING_COUNTY).unwrap();
    seed["relationships"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["from"] == id || r["to"] == id)
        .map(|r| {
            let text = |f: &str| r[f].as_str().unwrap().to_owned();
            (text("kind"), text("from"), text("to"))
        })
        .collect()
}

#[tokio::test]
async fn deleting_a_node_takes_its_relationships_with_it() {
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    let id = "kc:experiment:open-door-conversations";
    let edges = seed_edges_of(id);
    let kinds: BTreeSet<&str> = edges.iter().map(|e| e.0.as_str()).collect();
    assert!(kinds.len() >= 3, "the experiment is well connected in the seed: {kinds:?}");
    let neighbours: BTreeSet<String> =
        edges.iter().map(|(_, from, to)| if from == id { to.clone() } else { from.clone() }).collect();

    // Before: each neighbour sees the experiment.
    let seen_by = |data: &Value| -> usize {
        data["nodes"].as_array().unwrap().iter().filter(|n| n.to_string().contains(id)).count()
    };
    let neighbour_query = "query($ids: [ID!]!) { nodes(ids: $ids) { id links { from { id } to { id } } \
        ... on Principle { guides { id } } ... on Barrier { addressedBy { id } } \
        ... on Learning { producedBy { id } } ... on Source { citedBy { node { id } } } } }";
    let ids: Vec<&String> = neighbours.iter().collect();
    let data = server.data(neighbour_query, json!({ "ids": ids })).await;
    assert_eq!(seen_by(&data), neighbours.len());

    let data = server
        .data("mutation($id: ID!) { deleteNode(id: $id) { id removedRelationships } }", json!({ "id": id }))
        .await;
    assert_eq!(data["deleteNode"], json!({ "id": id, "removedRelationships": edges.len() }));

    let data = server.data("query($id: ID!) { node(id: $id) { id } }", json!({ "id": id })).await;
    assert_eq!(data["node"], Value::Null);
    let data = server.data(neighbour_query, json!({ "ids": ids })).await;
    assert!(data["nodes"].as_array().unwrap().iter().all(|n| !n.is_null()), "the neighbours stay");
    assert_eq!(seen_by(&data), 0, "no neighbour mentions the deleted node: {data:#}");
    let data = server.data("{ experiments(filter: { titleContains: \"open-door\" }) { totalCount } }", json!({})).await;
    assert_eq!(data["experiments"]["totalCount"], 0);

    // Deleting it again finds nothing.
    let code = server.error_code("mutation($id: ID!) { deleteNode(id: $id) { id } }", json!({ "id": id })).await;
    assert_eq!(code, "NOT_FOUND");
}

#[tokio::test]
async fn deleting_a_node_without_relationships_removes_none() {
    let dir = temp_dir();
    let server = TestServer::empty(dir.path()).await;
    create_org(&server, "acme", "Acme").await;
    for kind in OWNED {
        let node = create(&server, kind, "acme", "Lonely", json!({})).await;
        let data = server
            .data("mutation($id: ID!) { deleteNode(id: $id) { id removedRelationships } }", json!({ "id": node["id"] }))
            .await;
        assert_eq!(data["deleteNode"], json!({ "id": node["id"], "removedRelationships": 0 }));
        let count = server.data(&format!("{{ {} {{ totalCount }} }}", kind.list), json!({})).await;
        assert_eq!(count[kind.list]["totalCount"], 0, "{}", kind.name);
    }
}

#[tokio::test]
async fn organisations_are_not_deleted_and_bad_ids_are_refused() {
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    let body = server.gql("mutation { deleteNode(id: \"kc:organisation:kc\") { id } }", json!({})).await;
    assert_eq!(first_error(&body)["extensions"]["code"], "CONFLICT", "{body:#}");
    let data = server.data("{ node(id: \"kc:organisation:kc\") { id } }", json!({})).await;
    assert_eq!(data["node"]["id"], "kc:organisation:kc");

    let body = server.gql("mutation { deleteNode(id: \"not an id\") { id } }", json!({})).await;
    assert_eq!(first_error(&body)["extensions"]["code"], "BAD_USER_INPUT");
}

#[tokio::test]
async fn an_update_moves_a_node_to_the_front_of_updated_at_desc_only() {
    let dir = temp_dir();
    let server = TestServer::empty(dir.path()).await;
    create_org(&server, "acme", "Acme").await;
    for title in ["First", "Second", "Third"] {
        create(&server, VALUE, "acme", title, json!({})).await;
    }
    let order = |field: &str| format!("first: 10, orderBy: {{ field: {field}, direction: DESC }}");
    let before = ids(&page(&server, VALUE, &order("UPDATED_AT")).await["nodes"]);
    assert_eq!(before, ["acme:value:third", "acme:value:second", "acme:value:first"]);

    let body = try_update(&server, VALUE, "acme:value:first", json!({ "definition": "Now defined." })).await;
    assert!(body.get("errors").is_none(), "{body:#}");
    let updated = ids(&page(&server, VALUE, &order("UPDATED_AT")).await["nodes"]);
    assert_eq!(updated, ["acme:value:first", "acme:value:third", "acme:value:second"]);
    let created = ids(&page(&server, VALUE, &order("CREATED_AT")).await["nodes"]);
    assert_eq!(created, before, "the creation order is untouched");
    let by_id = ids(&page(&server, VALUE, "first: 10, orderBy: { field: ID }").await["nodes"]);
    assert_eq!(by_id, ["acme:value:first", "acme:value:second", "acme:value:third"]);
}

#[tokio::test]
async fn concurrent_creates_of_one_id_make_one_node_and_conflicts() {
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    let query = "mutation($i: CreateValueInput!) { createValue(input: $i) { id description } }";
    let racers = (0..16).map(|i| {
        let input = json!({ "organisation": "kc", "title": "Racing value", "description": format!("racer {i}") });
        server.gql(query, json!({ "i": input }))
    });
    let bodies = futures::future::join_all(racers).await;
    let winners: Vec<&Value> = bodies.iter().filter(|b| b.get("errors").is_none()).collect();
    assert_eq!(winners.len(), 1, "exactly one create wins: {bodies:#?}");
    for body in bodies.iter().filter(|b| b.get("errors").is_some()) {
        assert_eq!(first_error(body)["extensions"]["code"], "CONFLICT", "{body:#}");
    }
    let stored = read(&server, VALUE, "kc:value:racing-value").await;
    assert_eq!(stored["description"], winners[0]["data"]["createValue"]["description"], "the winner's node is stored");
    assert_eq!(selected(&server, VALUE, json!({ "titleContains": "racing" })).await.len(), 1);
}
