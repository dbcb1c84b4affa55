//! What is written stays written, and what fails leaves nothing behind: change
//! sets are all or nothing, data survives a restart, the seed loads once, and
//! the `import`/`export` commands round-trip a graph without loss.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{TestServer, temp_dir};
use pvgraph::domain::{Assertion, Change, Edge, Error, Node, NodeId, RelationshipKind};
use pvgraph::store::{self, Store, StoreLocation};
use serde_json::{Value, json};

const LISTS: [&str; 7] = ["organisations", "values", "principles", "barriers", "experiments", "learnings", "sources"];

/// Everything the API shows of the graph: every node of every list with its
/// outgoing relationships and their properties.
async fn snapshot(server: &TestServer) -> Value {
    let mut all = serde_json::Map::new();
    for list in LISTS {
        let query = format!(
            "{{ {list}(first: 100) {{ totalCount nodes {{ id title description tags visibility assertion createdAt updatedAt \
             links(direction: OUT) {{ kind to {{ id }} assertion how systemCondition on contribution strength \
             sources {{ id }} quote locator }} }} }} }}"
        );
        let data = server.data(&query, json!({})).await;
        all.insert(list.to_owned(), data[list].clone());
    }
    Value::Object(all)
}

/// How many nodes (by the lists' totalCount) and relationships (by each node's outgoing links).
async fn counts(server: &TestServer) -> (u64, u64) {
    let snapshot = snapshot(server).await;
    let mut nodes = 0;
    let mut relationships = 0;
    for list in LISTS {
        let total = snapshot[list]["totalCount"].as_u64().unwrap();
        let listed = snapshot[list]["nodes"].as_array().unwrap();
        assert_eq!(total as usize, listed.len(), "{list}: one page holds the whole list");
        nodes += total;
        relationships += listed.iter().map(|n| n["links"].as_array().unwrap().len() as u64).sum::<u64>();
    }
    (nodes, relationships)
}

async fn dump(store: &Store) -> (Vec<Node>, Vec<Edge>) {
    store.dump().await.expect("the store dumps")
}

fn field_and_reason(error: &Error) -> (String, Option<&'static str>) {
    match error {
        Error::Invalid { field, reason, .. } => (field.clone(), *reason),
        other => panic!("expected an invalid-input error, got {other:?}"),
    }
}

/// A small seed file of a new organisation; `relationships` are appended after a valid one.
fn seed_file(relationships: Value) -> String {
    let mut all = vec![json!({ "kind": "UPHOLDS", "from": "zz:principle:listen", "to": "zz:value:care" })];
    all.extend(relationships.as_array().unwrap().iter().cloned());
    json!({
        "format": "pvgraph/1",
        "nodes": [
            { "id": "zz:value:care", "title": "Care" },
            { "id": "zz:organisation:zz", "title": "Zed Council" },
            { "id": "zz:principle:listen", "title": "Listen first", "statement": "We listen before we act." },
            { "id": "zz:experiment:listening-posts", "title": "Listening posts", "hypothesis": "People talk when asked." },
            { "id": "zz:learning:people-talk", "title": "People talk", "statement": "They do.", "kind": "RELATIONSHIP",
              "capturedOn": "2023-05-01" },
            { "id": "zz:source:notes", "title": "Field notes", "url": "https://example.org/notes" }
        ],
        "relationships": all
    })
    .to_string()
}

// ---------------------------------------------------------------------------
// (a) A change set that fails half-way leaves no trace
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_seed_file_whose_last_relationship_is_a_duplicate_writes_nothing() {
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    let before = dump(&server.store).await;
    let before_api = snapshot(&server).await;

    // Every record is valid on its own; only the store sees the duplicate.
    let text = seed_file(json!([
        { "kind": "GUIDED_BY", "from": "zz:experiment:listening-posts", "to": "zz:principle:listen" },
        { "kind": "UPHOLDS", "from": "zz:principle:listen", "to": "zz:value:care", "assertion": "SOURCED" }
    ]));
    let error = pvgraph::seed::load(&server.store, &text).await.expect_err("the duplicate is refused");
    assert_eq!(field_and_reason(&error), ("relationships[2]".to_owned(), Some("CONFLICT")), "{error}");

    assert_eq!(dump(&server.store).await, before, "the store is unchanged");
    assert_eq!(snapshot(&server).await, before_api);
    let data = server
        .data("{ a: node(id: \"zz:value:care\") { id } b: node(id: \"zz:organisation:zz\") { id } }", json!({}))
        .await;
    assert_eq!(data, json!({ "a": null, "b": null }), "not even the first node of the file was written");

    // The same file without the duplicate loads.
    let text = seed_file(json!([]));
    pvgraph::seed::load(&server.store, &text).await.expect("the file loads");
    let data = server.data("{ node(id: \"zz:value:care\") { id } }", json!({})).await;
    assert_eq!(data["node"]["id"], "zz:value:care");
}

#[tokio::test]
async fn a_seed_file_whose_last_influence_is_dated_too_early_writes_nothing() {
    let dir = temp_dir();
    let server = TestServer::empty(dir.path()).await;
    let text = seed_file(json!([
        { "kind": "PRODUCED", "from": "zz:experiment:listening-posts", "to": "zz:learning:people-talk" },
        { "kind": "CITES", "from": "zz:learning:people-talk", "to": "zz:source:notes", "quote": "They talked." },
        { "kind": "INFLUENCED", "from": "zz:learning:people-talk", "to": "zz:principle:listen",
          "how": "REVISED_PRINCIPLE", "systemCondition": "MENTAL_MODELS", "on": "2023-04-30" }
    ]));
    let error = pvgraph::seed::load(&server.store, &text).await.expect_err("the early influence is refused");
    assert_eq!(
        field_and_reason(&error),
        ("relationships[3].on".to_owned(), Some("INFLUENCE_BEFORE_LEARNING")),
        "{error}"
    );
    assert!(server.store.is_empty().await.unwrap(), "nothing was written");
    assert_eq!(counts(&server).await, (0, 0));
}

#[tokio::test]
async fn a_seed_record_missing_a_node_at_either_end_writes_nothing() {
    let dir = temp_dir();
    let server = TestServer::empty(dir.path()).await;
    let text = seed_file(json!([{ "kind": "UPHOLDS", "from": "zz:principle:listen", "to": "zz:value:missing" }]));
    let error = pvgraph::seed::load(&server.store, &text).await.expect_err("the missing end is refused");
    assert_eq!(field_and_reason(&error), ("relationships[1]".to_owned(), Some("UNKNOWN_NODE")), "{error}");
    assert!(server.store.is_empty().await.unwrap());
}

#[tokio::test]
async fn a_change_set_applied_directly_is_all_or_nothing() {
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    let before = dump(&server.store).await;
    let record = |id: &str, title: &str| {
        let Value::Object(map) = json!({ "id": id, "title": title }) else { unreachable!() };
        map
    };
    let value = Node::from_record(record("kc:value:curiosity", "Curiosity"), pvgraph::domain::now()).unwrap();
    let edge = Edge::plain(
        RelationshipKind::Upholds,
        NodeId::parse("kc:principle:take-the-right-risks").unwrap(),
        NodeId::parse("kc:value:curiosity").unwrap(),
        Assertion::Inferred,
    )
    .unwrap();
    let missing = Edge::plain(
        RelationshipKind::Upholds,
        NodeId::parse("kc:principle:take-the-right-risks").unwrap(),
        NodeId::parse("kc:value:not-there").unwrap(),
        Assertion::Inferred,
    )
    .unwrap();
    let changes = vec![
        Change::Create(value),
        Change::Link(edge),
        Change::Delete(NodeId::parse("kc:barrier:departmental-silos").unwrap()),
        Change::Link(missing),
    ];
    let failed = server.store.apply(changes).await.expect_err("the last change fails");
    assert_eq!(failed.index, 3);
    assert!(matches!(failed.error, Error::NotFound(_)), "{:?}", failed.error);
    assert_eq!(dump(&server.store).await, before, "the create, the link and the delete were rolled back");
    let data = server
        .data(
            "{ a: node(id: \"kc:value:curiosity\") { id } b: node(id: \"kc:barrier:departmental-silos\") { id } }",
            json!({}),
        )
        .await;
    assert_eq!(data, json!({ "a": null, "b": { "id": "kc:barrier:departmental-silos" } }));
}

#[tokio::test]
async fn an_influence_citing_a_missing_source_leaves_no_edge() {
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    let before = dump(&server.store).await;
    let body = server
        .gql(
            "mutation($i: RecordInfluenceInput!) { recordInfluence(input: $i) { kind } }",
            json!({ "i": {
                "from": "kc:learning:time-and-space-for-reflection", "to": "kc:value:trust",
                "how": "BUILT_RELATIONSHIP", "systemCondition": "RELATIONSHIPS", "on": "2023-01-01",
                "assertion": "SOURCED", "sources": ["kc:source:true-north", "kc:source:no-such-source"]
            } }),
        )
        .await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{body:#}");
    assert_eq!(dump(&server.store).await, before);
    let data = server
        .data(
            "{ node(id: \"kc:value:trust\") { ... on Value { influencedBy { edges { learning { id } } } } } }",
            json!({}),
        )
        .await;
    let from: Vec<&Value> =
        data["node"]["influencedBy"]["edges"].as_array().unwrap().iter().map(|e| &e["learning"]["id"]).collect();
    assert!(!from.contains(&&json!("kc:learning:time-and-space-for-reflection")), "{data:#}");
}

// ---------------------------------------------------------------------------
// (b) Data survives a restart
// ---------------------------------------------------------------------------

#[tokio::test]
async fn what_was_written_is_read_back_after_a_restart() {
    let dir = temp_dir();
    let db = dir.path().join("restart.db");
    let server = TestServer::at(&db, false).await;
    let steps = [
        ("mutation { createOrganisation(input: { organisation: \"acme\", title: \"Acme\", jurisdiction: \"Somewhere\" }) { id } }"),
        ("mutation { createValue(input: { organisation: \"acme\", title: \"Care\", definition: \"Look after people.\", tags: [\"core\"] }) { id } }"),
        ("mutation { createPrinciple(input: { organisation: \"acme\", title: \"Listen first\", statement: \"Listen.\", status: ADOPTED, adoptedOn: \"2022-01-01\" }) { id } }"),
        ("mutation { createLearning(input: { organisation: \"acme\", title: \"People talk\", statement: \"They do.\", kind: RELATIONSHIP, capturedOn: \"2022-02-01\", confidence: LOW }) { id } }"),
        ("mutation { createSource(input: { organisation: \"acme\", title: \"Notes\", url: \"https://example.org/notes\", publishedOn: \"2022-02-02\" }) { id } }"),
        ("mutation { link(input: { from: \"acme:principle:listen-first\", kind: UPHOLDS, to: \"acme:value:care\", assertion: SOURCED }) { kind } }"),
        ("mutation { link(input: { from: \"acme:principle:listen-first\", kind: CITES, to: \"acme:source:notes\", quote: \"Listen.\", locator: \"p. 1\" }) { kind } }"),
        ("mutation { recordInfluence(input: { from: \"acme:learning:people-talk\", to: \"acme:principle:listen-first\", how: REVISED_PRINCIPLE, systemCondition: MENTAL_MODELS, on: \"2022-03-03\", contribution: \"It changed the wording.\", strength: WEAK, assertion: SOURCED, sources: [\"acme:source:notes\"] }) { kind } }"),
        ("mutation { updateValue(id: \"acme:value:care\", input: { description: \"Updated before the restart.\" }) { id } }"),
    ];
    for step in steps {
        server.data(step, json!({})).await;
    }
    let before = snapshot(&server).await;
    assert_eq!(counts(&server).await, (5, 3));
    server.stop().await;

    let server = TestServer::at(&db, false).await;
    let after = snapshot(&server).await;
    assert_eq!(after, before, "everything reads back the same after a restart");
    assert_eq!(after["values"]["nodes"][0]["description"], "Updated before the restart.");
    let influence = &after["learnings"]["nodes"][0]["links"][0];
    assert_eq!(influence["how"], "REVISED_PRINCIPLE");
    assert_eq!(influence["sources"], json!([{ "id": "acme:source:notes" }]));

    // And the restarted server keeps working, with the old rules in force.
    let body = server.gql(steps[5], json!({})).await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "CONFLICT", "{body:#}");
    server
        .data("mutation { createValue(input: { organisation: \"acme\", title: \"Trust\" }) { id } }", json!({}))
        .await;
    assert_eq!(counts(&server).await, (6, 3));
}

// ---------------------------------------------------------------------------
// (c) The seed loads, once
// ---------------------------------------------------------------------------

fn seed_counts() -> (u64, u64) {
    let seed: Value = serde_json::from_str(pvgraph::seed::KING_COUNTY).unwrap();
    (seed["nodes"].as_array().unwrap().len() as u64, seed["relationships"].as_array().unwrap().len() as u64)
}

#[tokio::test]
async fn the_seed_loads_whole() {
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    let (nodes, relationships) = counts(&server).await;
    assert!(nodes >= 50, "{nodes} nodes");
    assert!(relationships >= 80, "{relationships} relationships");
    assert_eq!((nodes, relationships), seed_counts(), "every record of the seed is in the graph");
}

#[tokio::test]
async fn loading_the_seed_twice_fails_and_changes_nothing() {
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    let before = dump(&server.store).await;
    let error = pvgraph::seed::load(&server.store, pvgraph::seed::KING_COUNTY).await.expect_err("a second load fails");
    let (field, reason) = field_and_reason(&error);
    assert_eq!(reason, Some("CONFLICT"), "{error}");
    assert!(field.starts_with("nodes["), "the first record at fault is named: {error}");
    assert!(error.to_string().contains("already exists"), "{error}");
    assert_eq!(dump(&server.store).await, before);
    assert_eq!(counts(&server).await, seed_counts());
}

// ---------------------------------------------------------------------------
// (d) The import and export commands
// ---------------------------------------------------------------------------

async fn pvgraph(args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_pvgraph"))
        .args(args)
        .env_remove("PVGRAPH_STORE")
        .output()
        .await
        .expect("the binary runs")
}

fn location(db: &Path) -> String {
    format!("sqlite://{}", db.display())
}

async fn import(file: &Path, db: &Path) -> Output {
    pvgraph(&["import", file.to_str().unwrap(), "--store", &location(db)]).await
}

async fn export(db: &Path) -> String {
    let out = pvgraph(&["export", "--format", "json", "--store", &location(db)]).await;
    assert!(out.status.success(), "export failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("UTF-8")
}

async fn store_is_empty(db: &Path) -> bool {
    let store = store::open(&StoreLocation::Sqlite(db.to_owned())).await.expect("the store opens");
    store.is_empty().await.unwrap()
}

/// An exported file with its nodes in id order, pretty-printed.
fn by_id(text: &str) -> String {
    let mut file: Value = serde_json::from_str(text).expect("an export is JSON");
    file["nodes"].as_array_mut().unwrap().sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    serde_json::to_string_pretty(&file).unwrap()
}

/// Compares two long texts, showing the lines around the first difference.
fn assert_same_text(left: &str, right: &str, what: &str) {
    if left == right {
        return;
    }
    let (l, r): (Vec<&str>, Vec<&str>) = (left.lines().collect(), right.lines().collect());
    let at = l.iter().zip(&r).position(|(a, b)| a != b).unwrap_or(l.len().min(r.len()));
    let from = at.saturating_sub(8);
    panic!(
        "{what}: the texts differ at line {}\n--- left\n{}\n--- right\n{}",
        at + 1,
        l[from..(at + 3).min(l.len())].join("\n"),
        r[from..(at + 3).min(r.len())].join("\n")
    );
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs `import` on a bad file: it must fail, say `expect` on stderr, and write nothing.
async fn refused_import(dir: &Path, name: &str, text: &str, expect: &[&str]) {
    let file = write(dir, name, text);
    let db = dir.join(format!("{name}.db"));
    let out = import(&file, &db).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{name}: the import succeeded");
    for words in expect {
        assert!(stderr.contains(words), "{name}: stderr does not name `{words}`:\n{stderr}");
    }
    assert!(store_is_empty(&db).await, "{name}: the store was written");
}

#[tokio::test]
async fn import_refuses_a_malformed_file_naming_the_place_and_writes_nothing() {
    let dir = temp_dir();
    let dir = dir.path();
    let syntax = "{\n  \"format\": \"pvgraph/1\",\n  \"nodes\": [\n    { \"id\": \"zz:organisation:zz\", \"title\": \"Zed\" }\n    { \"id\": \"zz:value:v\", \"title\": \"V\" }\n  ]\n}\n";
    refused_import(dir, "syntax.json", syntax, &["line 5", "column 5"]).await;

    let bad_node = json!({ "format": "pvgraph/1", "nodes": [
        { "id": "zz:organisation:zz", "title": "Zed" },
        { "id": "zz:value:v", "title": "V" },
        { "id": "zz:principle:p", "title": "P", "statment": "Typo in the field name." }
    ] });
    refused_import(dir, "unknown-field.json", &bad_node.to_string(), &["nodes[2]", "statment"]).await;

    let no_title = json!({ "format": "pvgraph/1", "nodes": [
        { "id": "zz:organisation:zz", "title": "Zed" },
        { "id": "zz:value:v" }
    ] });
    refused_import(dir, "no-title.json", &no_title.to_string(), &["nodes[1]", "title"]).await;

    let bad_kind = seed_file(json!([{ "kind": "LIKES", "from": "zz:principle:listen", "to": "zz:value:care" }]));
    refused_import(dir, "bad-kind.json", &bad_kind, &["relationships[1]", "LIKES"]).await;

    let not_allowed = seed_file(json!([{ "kind": "UPHOLDS", "from": "zz:value:care", "to": "zz:principle:listen" }]));
    refused_import(dir, "not-allowed.json", &not_allowed, &["relationships[1]"]).await;

    // Only the store can see these: a duplicate, and an influence before its learning.
    let duplicate = seed_file(json!([{ "kind": "UPHOLDS", "from": "zz:principle:listen", "to": "zz:value:care" }]));
    refused_import(dir, "duplicate.json", &duplicate, &["relationships[1]", "already exists"]).await;
    let early = seed_file(json!([{ "kind": "INFLUENCED", "from": "zz:learning:people-talk", "to": "zz:value:care",
                                  "how": "SHIFTED_MINDSET", "systemCondition": "MENTAL_MODELS", "on": "2020-01-01" }]));
    refused_import(dir, "early.json", &early, &["relationships[1].on"]).await;

    refused_import(dir, "wrong-format.json", "{ \"format\": \"pvgraph/0\" }", &["format"]).await;
    let missing = dir.join("missing.db");
    let out = import(&dir.join("no-such-file.json"), &missing).await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-such-file.json"));
}

#[tokio::test]
async fn export_and_import_round_trip_the_seed_without_loss() {
    let dir = temp_dir();
    let dir = dir.path();
    let seed = Path::new(env!("CARGO_MANIFEST_DIR")).join("seed/king-county.json");
    let first = dir.join("first.db");
    let out = import(&seed, &first).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (nodes, relationships) = seed_counts();
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains(&format!("imported {nodes} nodes and {relationships} relationships")),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Importing the same file again fails and changes nothing.
    let exported = export(&first).await;
    let again = import(&seed, &first).await;
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    assert_same_text(&export(&first).await, &exported, "a refused import changes nothing");

    let file = write(dir, "exported.json", &exported);
    let second = dir.join("second.db");
    let out = import(&file, &second).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let reexported = export(&second).await;
    assert_same_text(&reexported, &exported, "a re-import exports the very same file");

    let parsed: Value = serde_json::from_str(&exported).unwrap();
    assert_eq!(parsed["format"], "pvgraph/1");
    assert_eq!(parsed["nodes"].as_array().unwrap().len() as u64, nodes);
    assert_eq!(parsed["relationships"].as_array().unwrap().len() as u64, relationships);
}

#[tokio::test]
async fn export_and_import_round_trip_what_the_api_wrote() {
    let dir = temp_dir();
    let db = dir.path().join("api.db");
    let server = TestServer::at(&db, true).await;
    let steps = [
        "mutation { createOrganisation(input: { organisation: \"acme\", title: \"Acme\", purpose: \"Serve.\", visibility: PARTNERS }) { id } }",
        "mutation { createExperiment(input: { organisation: \"acme\", title: \"Pilot\", hypothesis: \"It helps.\", status: STOPPED, startedOn: \"2022-01-01\", endedOn: \"2022-02-01\", evidenceLevel: 3, failureNotes: \"Ran out of time.\", tags: [\"a\", \"b\"], assertion: HYPOTHETICAL }) { id } }",
        "mutation { createLearning(input: { organisation: \"acme\", title: \"Time matters\", statement: \"Plan for it.\", kind: PROCESS, confidence: VERY_LOW, embedding: EMBEDDED, capturedOn: \"2022-02-01\", embeddedOn: \"2022-06-01\" }) { id } }",
        "mutation { createSource(input: { organisation: \"acme\", title: \"Memo\", url: \"https://example.org/memo\", publisher: \"Acme\", quote: \"Q\", locator: \"L\" }) { id } }",
        "mutation { link(input: { from: \"acme:experiment:pilot\", kind: PRODUCED, to: \"acme:learning:time-matters\" }) { kind } }",
        "mutation { link(input: { from: \"acme:experiment:pilot\", kind: GUIDED_BY, to: \"kc:principle:take-the-right-risks\", assertion: HYPOTHETICAL }) { kind } }",
        "mutation { link(input: { from: \"acme:learning:time-matters\", kind: CITES, to: \"acme:source:memo\", locator: \"p. 9\" }) { kind } }",
        "mutation { recordInfluence(input: { from: \"acme:learning:time-matters\", to: \"kc:barrier:departmental-silos\", how: REPLICATED_ELSEWHERE, systemCondition: RESOURCE_FLOWS, on: \"2022-07-01\", strength: STRONG, sources: [\"acme:source:memo\", \"kc:source:true-north\"] }) { kind } }",
        "mutation { updateExperiment(id: \"acme:experiment:pilot\", input: { description: \"Edited.\" }) { id } }",
    ];
    for step in steps {
        server.data(step, json!({})).await;
    }
    let shown = snapshot(&server).await;
    server.stop().await;

    let exported = export(&db).await;
    let file = write(dir.path(), "api.json", &exported);
    let copy = dir.path().join("copy.db");
    let out = import(&file, &copy).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Import puts organisations first, so the nodes may come out in another order;
    // the graph itself must be the same, record for record.
    let copied = export(&copy).await;
    assert_same_text(&by_id(&copied), &by_id(&exported), "the copy exports the same graph");
    // From then on the order is stable too.
    let file = write(dir.path(), "copy.json", &copied);
    let third = dir.path().join("third.db");
    assert!(import(&file, &third).await.status.success());
    assert_same_text(&export(&third).await, &copied, "a second round trip exports the very same file");

    // And the API shows the copy exactly as it showed the original.
    let server = TestServer::at(&copy, false).await;
    assert_eq!(snapshot(&server).await, shown);
}
