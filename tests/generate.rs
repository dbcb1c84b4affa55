//! `pvgraph generate` from the built binary: the same seed gives the same
//! bytes, another seed other bytes, and the output imports into a fresh store
//! with the documented number of nodes and influences across organisations.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::{TestServer, pvgraph, temp_dir, text};
use pvgraph::generate::NODES_PER_ORGANISATION;
use serde_json::{Value, json};

async fn generate(organisations: usize, seed: u64) -> Vec<u8> {
    let out = pvgraph(&["generate", "--organisations", &organisations.to_string(), "--seed", &seed.to_string()]).await;
    assert!(!out.stdout.is_empty());
    out.stdout
}

fn organisation(id: &str) -> &str {
    id.split(':').next().unwrap()
}

#[tokio::test]
async fn the_same_seed_gives_the_same_bytes() {
    let first = generate(3, 5).await;
    let second = generate(3, 5).await;
    assert!(first == second, "two runs with --seed 5 differ");
    // Written to a file, the same bytes again.
    let dir = temp_dir();
    let file = dir.path().join("generated.json");
    pvgraph(&["generate", "--organisations", "3", "--seed", "5", "--output", file.to_str().unwrap()]).await;
    assert!(std::fs::read(&file).unwrap() == first, "--output writes what standard output shows");
}

#[tokio::test]
async fn another_seed_gives_another_graph() {
    let five = generate(3, 5).await;
    let six = generate(3, 6).await;
    assert!(five != six, "--seed 5 and --seed 6 give the same file");
    // The same shape, though: the same node ids, other words and links.
    let ids = |bytes: &[u8]| -> BTreeSet<String> {
        let file: Value = serde_json::from_slice(bytes).unwrap();
        file["nodes"].as_array().unwrap().iter().map(|n| text(&n["id"])).collect()
    };
    assert_eq!(ids(&five), ids(&six));
}

#[tokio::test]
async fn the_output_is_a_seed_file_of_the_documented_size() {
    let bytes = generate(3, 5).await;
    let file: Value = serde_json::from_slice(&bytes).expect("the output is JSON");
    assert_eq!(file["format"], "pvgraph/1");
    let nodes = file["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 3 * NODES_PER_ORGANISATION);
    let ids: BTreeSet<String> = nodes.iter().map(|n| text(&n["id"])).collect();
    assert_eq!(ids.len(), nodes.len(), "ids are unique");
    for org in ["org0", "org1", "org2"] {
        assert_eq!(ids.iter().filter(|id| organisation(id) == org).count(), NODES_PER_ORGANISATION, "{org}");
        assert!(ids.contains(&format!("{org}:organisation:{org}")));
    }
    let relationships = file["relationships"].as_array().unwrap();
    for r in relationships {
        assert!(ids.contains(r["from"].as_str().unwrap()) && ids.contains(r["to"].as_str().unwrap()), "{r}");
    }
    let across = relationships
        .iter()
        .filter(|r| r["kind"] == "INFLUENCED")
        .filter(|r| organisation(r["from"].as_str().unwrap()) != organisation(r["to"].as_str().unwrap()))
        .count();
    assert!(across > 0, "some influences cross organisations");
    // One organisation has no one else to learn from.
    let alone: Value = serde_json::from_slice(&generate(1, 5).await).unwrap();
    assert_eq!(alone["nodes"].as_array().unwrap().len(), NODES_PER_ORGANISATION);
}

async fn import(file: &Path, db: &Path) -> String {
    let store = format!("sqlite://{}", db.display());
    let out = pvgraph(&["import", file.to_str().unwrap(), "--store", &store]).await;
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test]
async fn the_output_imports_cleanly_into_a_fresh_store() {
    let dir = temp_dir();
    let bytes = generate(3, 5).await;
    let file_path = dir.path().join("generated.json");
    std::fs::write(&file_path, &bytes).unwrap();
    let file: Value = serde_json::from_slice(&bytes).unwrap();
    let relationships = file["relationships"].as_array().unwrap();

    let db = dir.path().join("generated.db");
    let said = import(&file_path, &db).await;
    assert!(
        said.contains(&format!(
            "imported {} nodes and {} relationships",
            3 * NODES_PER_ORGANISATION,
            relationships.len()
        )),
        "{said}"
    );

    // What the store holds, read back through the API.
    let server = TestServer::at(&db, false).await;
    let mut total = 0;
    for list in ["organisations", "values", "principles", "barriers", "experiments", "learnings", "sources"] {
        let query = format!("{{ {list}(first: 1) {{ totalCount }} }}");
        total += server.data(&query, json!({})).await[list]["totalCount"].as_u64().unwrap() as usize;
    }
    assert_eq!(total, 3 * NODES_PER_ORGANISATION);

    let expected: BTreeSet<(String, String)> = relationships
        .iter()
        .filter(|r| r["kind"] == "INFLUENCED")
        .filter(|r| organisation(r["from"].as_str().unwrap()) != organisation(r["to"].as_str().unwrap()))
        .map(|r| (text(&r["from"]), text(&r["to"])))
        .collect();
    assert!(!expected.is_empty());
    let query = "{ crossOrganisationInfluences(first: 1000) { from { id } to { id } } }";
    let got = server.data(query, json!({})).await["crossOrganisationInfluences"].clone();
    let got: BTreeSet<(String, String)> =
        got.as_array().unwrap().iter().map(|e| (text(&e["from"]["id"]), text(&e["to"]["id"]))).collect();
    assert_eq!(got, expected);
    server.stop().await;

    // All or nothing: importing the same file again is refused and changes nothing.
    let store = format!("sqlite://{}", db.display());
    let again = tokio::process::Command::new(env!("CARGO_BIN_EXE_pvgraph"))
        .args(["import", file_path.to_str().unwrap(), "--store", &store])
        .env_remove("PVGRAPH_STORE")
        .output()
        .await
        .unwrap();
    assert!(!again.status.success(), "a second import of the same ids fails");
    let server = TestServer::at(&db, false).await;
    let learnings = server.data("{ learnings(first: 1) { totalCount } }", json!({})).await;
    let in_file = file["nodes"].as_array().unwrap().iter().filter(|n| text(&n["id"]).contains(":learning:")).count();
    assert_eq!(learnings["learnings"]["totalCount"].as_u64().unwrap() as usize, in_file);
}
