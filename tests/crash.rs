//! Nothing acknowledged is lost, nothing is half-applied: the real binary on
//! a SQLite file takes a stream of mutations from several clients, is killed
//! with SIGKILL in the middle, and is started again on the same file.
//!
//! Each client, step by step, creates an experiment whose title, description,
//! tags and full-text entry all carry the step's mark, links it to a
//! principle, and now and then deletes an experiment of five steps before
//! (the node and its relationship in one change set). After the restart,
//! every acknowledged change must be there; every experiment that is there
//! must be whole (fields agree, search finds it); a deletion is either whole
//! or not at all; and SQLite's own checks pass.

mod common;

use common::mutate_at as mutate;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

const PRINCIPLE: &str = "kc:principle:take-the-right-risks";
const CLIENTS: usize = 4;
/// Acknowledged mutations to wait for before the kill.
const ACKS_BEFORE_KILL: usize = 100;

async fn query(client: &reqwest::Client, url: &str, query: &str, variables: Value) -> Value {
    let body: Value = client
        .post(format!("{url}/graphql"))
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await
        .expect("the restarted server answers")
        .json()
        .await
        .unwrap();
    assert!(body.get("errors").is_none(), "{body:#}");
    body["data"].clone()
}

/// The mark of client `c`'s step `i`: one word, so full-text search finds exactly it.
fn mark(c: usize, i: usize) -> String {
    format!("crashmark{c}x{i}")
}

/// Creates the organisation whose experiments the clients write.
const ORGANISATION: &str = "mutation($i: CreateOrganisationInput!) { createOrganisation(input: $i) { id } }";

#[derive(Default)]
struct Acks {
    created: BTreeMap<String, String>,
    linked: BTreeSet<String>,
    deleted: BTreeSet<String>,
    /// Deletions sent but not acknowledged.
    deleting: BTreeSet<String>,
}

async fn client_loop(c: usize, url: String, acks: Arc<Mutex<Acks>>) {
    let client = reqwest::Client::new();
    let mut mine: Vec<Option<String>> = Vec::new();
    for i in 0.. {
        let mark = mark(c, i);
        let input = json!({
            "organisation": "acme", "slug": mark, "title": format!("Crash {mark}"),
            "description": format!("Written by {mark}"), "tags": [mark], "hypothesis": "Nothing is lost",
        });
        let Some(data) = mutate(
            &client,
            &url,
            "mutation($i: CreateExperimentInput!) { createExperiment(input: $i) { id } }",
            json!({ "i": input }),
        )
        .await
        else {
            return;
        };
        let id = data["createExperiment"]["id"].as_str().unwrap().to_owned();
        acks.lock().unwrap().created.insert(id.clone(), mark.clone());
        mine.push(Some(id.clone()));
        let link = json!({ "from": id, "kind": "GUIDED_BY", "to": PRINCIPLE });
        if mutate(&client, &url, "mutation($i: LinkInput!) { link(input: $i) { kind } }", json!({ "i": link }))
            .await
            .is_none()
        {
            return;
        }
        acks.lock().unwrap().linked.insert(id);
        if i >= 5 && i % 3 == 0 {
            let Some(old) = mine[i - 5].take() else { continue };
            acks.lock().unwrap().deleting.insert(old.clone());
            if mutate(&client, &url, "mutation($id: ID!) { deleteNode(id: $id) { id } }", json!({ "id": old }))
                .await
                .is_none()
            {
                return;
            }
            let mut acks = acks.lock().unwrap();
            acks.deleting.remove(&old);
            acks.deleted.insert(old);
        }
    }
}

/// Every experiment of `acme` now in the store, by id: (title, description, tags, guided by).
async fn experiments(client: &reqwest::Client, url: &str) -> BTreeMap<String, Value> {
    let mut all = BTreeMap::new();
    let mut after: Option<String> = None;
    loop {
        let data = query(
            client,
            url,
            "query($a: String) { experiments(filter: { organisation: [\"acme\"] }, first: 100, after: $a, \
             orderBy: { field: ID }) { pageInfo { hasNextPage endCursor } nodes { id title description tags \
             guidedBy { id } } } }",
            json!({ "a": after }),
        )
        .await;
        let page = &data["experiments"];
        for node in page["nodes"].as_array().unwrap() {
            all.insert(node["id"].as_str().unwrap().to_owned(), node.clone());
        }
        if page["pageInfo"]["hasNextPage"] != true {
            return all;
        }
        after = page["pageInfo"]["endCursor"].as_str().map(str::to_owned);
    }
}

#[tokio::test]
async fn a_server_killed_mid_stream_keeps_every_acknowledged_mutation_and_no_half() {
    if common::sqlite_only("it kills the server that owns the SQLite file") {
        return;
    }
    let dir = common::temp_dir();
    let db = dir.path().join("crash.db");
    let (mut server, url) = common::serve_binary(&db, &["--rate-limit", "0"]).await;
    let organisation = json!({ "organisation": "acme", "title": "Acme Council" });
    let created = mutate(&reqwest::Client::new(), &url, ORGANISATION, json!({ "i": organisation })).await;
    assert!(created.is_some(), "the organisation is created");
    let acks = Arc::new(Mutex::new(Acks::default()));
    let clients: Vec<_> = (0..CLIENTS).map(|c| tokio::spawn(client_loop(c, url.clone(), acks.clone()))).collect();
    let acknowledged = |acks: &Acks| acks.created.len() + acks.linked.len() + acks.deleted.len();
    while acknowledged(&acks.lock().unwrap()) < ACKS_BEFORE_KILL {
        assert!(!clients.iter().all(|c| c.is_finished()), "every client stopped before the kill");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    server.start_kill().expect("SIGKILL is sent");
    server.wait().await.unwrap();
    for client in clients {
        client.await.unwrap();
    }
    let acks = Arc::into_inner(acks).unwrap().into_inner().unwrap();
    assert!(!acks.deleted.is_empty(), "no deletion was acknowledged before the kill; the test proves less");

    let (mut server, url) = common::serve_binary(&db, &["--rate-limit", "0"]).await;
    let client = reqwest::Client::new();
    let present = experiments(&client, &url).await;
    let guided = |node: &Value| node["guidedBy"].as_array().unwrap().iter().any(|p| p["id"] == PRINCIPLE);
    for (id, mark) in &acks.created {
        if acks.deleted.contains(id) {
            assert!(!present.contains_key(id), "{id}: its deletion was acknowledged, yet it is there");
            continue;
        }
        if acks.deleting.contains(id) && !present.contains_key(id) {
            continue; // a deletion in flight that committed: whole, as the checks below show
        }
        let node = present.get(id).unwrap_or_else(|| panic!("{id}: acknowledged ({mark}) but lost"));
        if acks.linked.contains(id) {
            assert!(guided(node), "{id}: its link was acknowledged but lost");
        }
    }
    for (id, node) in &present {
        // Whole: every field carries the same mark, and the full-text index has it.
        let mark = id.rsplit(':').next().unwrap();
        assert_eq!(node["title"], format!("Crash {mark}"), "{id}");
        assert_eq!(node["description"], format!("Written by {mark}"), "{id}");
        assert_eq!(node["tags"], json!([mark]), "{id}");
        let found =
            query(&client, &url, "query($t: String!) { search(text: $t) { node { id } } }", json!({ "t": mark })).await;
        assert_eq!(found["search"], json!([{ "node": { "id": id } }]), "{id}: search and store disagree");
        // A deletion in flight either took the node and its link, or neither.
        if acks.deleting.contains(id) && acks.linked.contains(id) {
            assert!(guided(node), "{id}: half deleted");
        }
    }
    // Nothing the search index holds is missing from the store.
    let stray = query(&client, &url, "{ search(text: \"crash\", first: 100) { node { id } } }", json!({})).await;
    for hit in stray["search"].as_array().unwrap() {
        assert!(present.contains_key(hit["node"]["id"].as_str().unwrap()), "a search hit with no node: {hit}");
    }
    server.start_kill().unwrap();
    server.wait().await.unwrap();

    let conn = rusqlite::Connection::open(&db).unwrap();
    let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(check, "ok");
    let (nodes, words): (i64, i64) = conn
        .query_row("SELECT (SELECT count(*) FROM nodes), (SELECT count(*) FROM node_words)", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!(nodes, words, "every node has its full-text entry and no entry outlives its node");
    let dangling: i64 = conn
        .query_row(
            "SELECT count(*) FROM edges WHERE src NOT IN (SELECT id FROM nodes) OR dst NOT IN (SELECT id FROM nodes)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(dangling, 0, "relationships whose node is gone");
    eprintln!(
        "crash test: {} creates, {} links, {} deletions acknowledged; {} experiments after the restart",
        acks.created.len(),
        acks.linked.len(),
        acks.deleted.len(),
        present.len()
    );
}
