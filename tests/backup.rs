//! `pvgraph backup` and `pvgraph restore` on the real binary: a backup taken
//! while a server writes is one moment's graph, a restore brings exactly that
//! back, and a restore refuses a running store and files that are not ours.

mod common;

use common::mutate_at as mutate;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};

/// Creates experiments `w0`, `w1`, … one after another until stopped, counting acknowledgements.
async fn writer(url: String, acknowledged: Arc<AtomicUsize>) {
    let client = reqwest::Client::new();
    for i in 0.. {
        let input = json!({ "organisation": "acme", "slug": format!("w{i}"), "title": format!("Write {i}"),
                            "hypothesis": "Backups are whole" });
        let query = "mutation($i: CreateExperimentInput!) { createExperiment(input: $i) { id } }";
        if mutate(&client, &url, query, json!({ "i": input })).await.is_none() {
            return;
        }
        acknowledged.fetch_add(1, Ordering::SeqCst);
    }
}

/// Creates the organisation whose experiments the clients write.
const ORGANISATION: &str = "mutation($i: CreateOrganisationInput!) { createOrganisation(input: $i) { id } }";

fn location(db: &Path) -> String {
    format!("sqlite://{}", db.display())
}

/// Runs the binary, returning whether it succeeded and what it wrote to standard error.
async fn run(args: &[&str]) -> (bool, String) {
    let out = common::pvgraph_outcome(args).await;
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// The whole graph in the seed format, nodes by id; exported from a copy so the file is untouched.
async fn export(db: &Path) -> Value {
    let dir = common::temp_dir();
    let copy = dir.path().join("copy.db");
    std::fs::copy(db, &copy).unwrap();
    // A server killed on the store leaves its last commits in the write-ahead log beside it.
    let wal = db.with_extension("db-wal");
    if wal.exists() {
        std::fs::copy(&wal, copy.with_extension("db-wal")).unwrap();
    }
    let out = common::pvgraph(&["export", "--store", &location(&copy)]).await;
    let mut graph: Value = serde_json::from_slice(&out.stdout).unwrap();
    graph["nodes"].as_array_mut().unwrap().sort_by_key(|n| n["id"].as_str().unwrap().to_owned());
    graph
}

/// The numbers `i` of the writer's experiments `acme:experiment:w{i}` in a graph.
fn writes(graph: &Value) -> Vec<usize> {
    let mut found: Vec<usize> = graph["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n["id"].as_str().unwrap().strip_prefix("acme:experiment:w")?.parse().ok())
        .collect();
    found.sort();
    found
}

#[tokio::test]
async fn a_backup_taken_under_writes_restores_exactly_that_moment() {
    if common::sqlite_only("backups are of the SQLite file") {
        return;
    }
    let dir = common::temp_dir();
    let db = dir.path().join("live.db");
    let backup = dir.path().join("backup.db");
    let (mut server, url) = common::serve_binary(&db, &["--rate-limit", "0"]).await;
    let organisation = json!({ "organisation": "acme", "title": "Acme Council" });
    let created = mutate(&reqwest::Client::new(), &url, ORGANISATION, json!({ "i": organisation })).await;
    assert!(created.is_some(), "the organisation is created");
    let acknowledged = Arc::new(AtomicUsize::new(0));
    let writing = tokio::spawn(writer(url.clone(), acknowledged.clone()));
    while acknowledged.load(Ordering::SeqCst) < 10 {
        assert!(!writing.is_finished(), "the writer stopped");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }

    // While the writer goes on.
    let (ok, said) = run(&["backup", backup.to_str().unwrap(), "--store", &location(&db)]).await;
    assert!(ok, "the backup failed: {said}");
    let at_backup = acknowledged.load(Ordering::SeqCst);
    // A restore over the running server's store is refused, and changes nothing.
    let (ok, said) = run(&["restore", backup.to_str().unwrap(), "--store", &location(&db)]).await;
    assert!(!ok, "a restore over a running server succeeded");
    assert!(said.contains("in use"), "{said}");
    while acknowledged.load(Ordering::SeqCst) < at_backup + 10 {
        assert!(!writing.is_finished(), "the writer stopped");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    server.start_kill().unwrap();
    server.wait().await.unwrap();
    writing.await.unwrap();

    let backed_up = export(&backup).await;
    let in_backup = writes(&backed_up);
    // One moment: the writes up to some point, none missing, and the seed whole.
    assert!(in_backup.len() >= 10, "the backup misses writes acknowledged before it: {in_backup:?}");
    assert_eq!(in_backup, (0..in_backup.len()).collect::<Vec<_>>(), "the backup is not one moment's graph");
    assert!(in_backup.len() <= at_backup + 1, "the backup holds writes made after it ended");
    let before_restore = writes(&export(&db).await);
    assert!(before_restore.len() > in_backup.len(), "the store took no writes after the backup");

    let (ok, said) = run(&["restore", backup.to_str().unwrap(), "--store", &location(&db)]).await;
    assert!(ok, "the restore failed: {said}");
    assert_eq!(export(&db).await, backed_up, "the restored store differs from the backup");
    // And a server starts on it and serves it.
    let (_server, url) = common::serve_binary(&db, &[]).await;
    let body: Value = reqwest::Client::new()
        .post(format!("{url}/graphql"))
        .json(&json!({ "query": "{ experiments(filter: { organisation: [\"acme\"] }) { totalCount } }" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["data"]["experiments"]["totalCount"], in_backup.len(), "{body:#}");
}

#[tokio::test]
async fn restore_refuses_files_that_are_not_pvgraph_databases() {
    let dir = common::temp_dir();
    let db = dir.path().join("store.db");
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "not a database at all").unwrap();
    let other = dir.path().join("other.db");
    rusqlite::Connection::open(&other).unwrap().execute_batch("CREATE TABLE t (x INTEGER);").unwrap();
    let missing = dir.path().join("missing.db");
    for (file, expect) in
        [(&text, "not a pvgraph database"), (&other, "not a pvgraph database"), (&missing, "no database file")]
    {
        let (ok, said) = run(&["restore", file.to_str().unwrap(), "--store", &location(&db)]).await;
        assert!(!ok, "{}: restored", file.display());
        assert!(said.contains(expect), "{}: {said}", file.display());
    }
    assert!(!db.exists() || std::fs::metadata(&db).unwrap().len() == 0, "a refused restore wrote the store");
    // Neo4j has its own tools.
    let (ok, said) = run(&["backup", "x.db", "--store", "bolt://127.0.0.1:1"]).await;
    assert!(!ok);
    assert!(said.contains("neo4j-admin"), "{said}");
}

/// Relationships with a foreign end (a partner's node, named by id only) are in the backup, are
/// counted in what it says, and come back with a restore.
#[tokio::test]
async fn backup_and_restore_keep_relationships_with_a_foreign_end() {
    let dir = common::temp_dir();
    let (db, backup, restored) =
        (dir.path().join("store.db"), dir.path().join("backup.db"), dir.path().join("restored.db"));
    let file = dir.path().join("with-partner.json");
    let links = json!({ "format": "pvgraph/1", "nodes": [
        { "id": "kc:organisation:kc", "title": "King County" },
        { "id": "kc:value:openness", "title": "Openness" },
        { "id": "kc:principle:share", "title": "Share", "statement": "Share what we learn" }
    ], "relationships": [
        { "kind": "UPHOLDS", "from": "kc:principle:share", "to": "kc:value:openness" },
        { "kind": "UPHOLDS", "from": "kc:principle:share", "to": "nw:value:open-doors" },
        { "kind": "UPHOLDS", "from": "nw:principle:listen", "to": "kc:value:openness" }
    ] });
    std::fs::write(&file, links.to_string()).unwrap();
    let (ok, said) = run(&["import", file.to_str().unwrap(), "--store", &location(&db)]).await;
    assert!(ok, "the import failed: {said}");

    let (ok, said) = run(&["backup", backup.to_str().unwrap(), "--store", &location(&db)]).await;
    assert!(ok && said.contains("3 nodes and 3 relationships"), "{said}");
    let (ok, said) = run(&["restore", backup.to_str().unwrap(), "--store", &location(&restored)]).await;
    assert!(ok && said.contains("3 nodes and 3 relationships"), "{said}");
    let graph = export(&restored).await;
    assert_eq!(graph, export(&db).await);
    let ends: Vec<(&str, &str)> = graph["relationships"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["from"].as_str().unwrap(), r["to"].as_str().unwrap()))
        .collect();
    assert!(ends.contains(&("kc:principle:share", "nw:value:open-doors")), "{ends:?}");
    assert!(ends.contains(&("nw:principle:listen", "kc:value:openness")), "{ends:?}");
}
