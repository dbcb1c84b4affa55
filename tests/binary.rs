//! The `pvgraph` binary as a person runs it: configured by `PVGRAPH_*`
//! variables, seeding an empty store on first start, answering over HTTP,
//! and stopping cleanly on SIGTERM with everything kept.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Starts the binary, with these variables set too, and waits for the line that gives its address.
fn start(db: &std::path::Path, vars: &[(&str, &str)]) -> (Child, String) {
    // JWTs signed with the test secret act for an organisation (see `post`).
    let secret = db.with_file_name("jwt-secret");
    std::fs::create_dir_all(db.parent().unwrap()).unwrap();
    std::fs::write(&secret, common::TEST_JWT_SECRET).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_pvgraph"))
        .env("PVGRAPH_LISTEN", "127.0.0.1:0")
        .env("PVGRAPH_JWT_HS256_SECRET_FILE", &secret)
        .env("PVGRAPH_STORE", format!("sqlite://{}", db.display()))
        .env("PVGRAPH_LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .envs(vars.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the binary starts");
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let deadline = Instant::now() + Duration::from_secs(60);
    let address = loop {
        assert!(Instant::now() < deadline, "the server never said where it listens");
        let line = lines.next().expect("the server keeps logging").unwrap();
        let entry: Value = serde_json::from_str(&line).expect("each log line is JSON");
        let message = entry["fields"]["message"].as_str().unwrap_or_default();
        if let Some(rest) = message.split("http://").nth(1) {
            break rest.trim_end_matches('/').to_owned();
        }
    };
    // Keep draining the log so the server never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    (child, address)
}

fn terminate(child: &mut Child) -> std::process::ExitStatus {
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "the server did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// POSTs a query as an admin of `kc`.
async fn post(address: &str, query: &str) -> Value {
    reqwest::Client::new()
        .post(format!("http://{address}/graphql"))
        .bearer_auth(common::test_jwt("kc", "admin"))
        .json(&json!({ "query": query }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_binary_seeds_serves_and_stops_cleanly_on_sigterm() {
    let dir = common::temp_dir();
    let db = dir.path().join("nested").join("pvgraph.db");
    let (mut child, address) = start(&db, &[]);

    let count = post(&address, "{ principles { totalCount } }").await;
    let seeded = count["data"]["principles"]["totalCount"].as_u64().unwrap();
    assert!(seeded > 0, "the empty store was seeded: {count}");
    let created = post(
        &address,
        r#"mutation { createValue(input: { organisation: "kc", title: "Kept across restarts" }) { id } }"#,
    )
    .await;
    assert_eq!(created["data"]["createValue"]["id"], "kc:value:kept-across-restarts", "{created}");

    let status = terminate(&mut child);
    assert!(status.success(), "a SIGTERM is a graceful stop, not a failure: {status}");

    // A second start finds its data and does not seed again; keeping nothing that walks read,
    // its traces read the file each time and answer alike.
    let (mut child, address) = start(&db, &[("PVGRAPH_WALK_CACHE_ENTRIES", "0")]);
    let again =
        post(&address, r#"{ principles { totalCount } node(id: "kc:value:kept-across-restarts") { id } }"#).await;
    assert_eq!(again["data"]["principles"]["totalCount"].as_u64().unwrap(), seeded);
    assert_eq!(again["data"]["node"]["id"], "kc:value:kept-across-restarts");
    let trace = r#"{ trace(from: "kc:value:equity", direction: UPSTREAM, maxDepth: 2) { nodes { node { id } } } }"#;
    let (first, second) = (post(&address, trace).await, post(&address, trace).await);
    assert!(first["data"]["trace"]["nodes"].as_array().is_some_and(|n| n.len() > 1), "{first}");
    assert_eq!(first, second);
    assert!(terminate(&mut child).success());
}

#[test]
fn a_walk_cache_size_that_is_no_number_is_a_clear_error() {
    let output = Command::new(env!("CARGO_BIN_EXE_pvgraph")).args(["--walk-cache-entries", "lots"]).output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--walk-cache-entries"), "the error names the flag: {stderr}");
}

#[test]
fn a_bad_store_location_is_a_clear_error() {
    let output =
        Command::new(env!("CARGO_BIN_EXE_pvgraph")).args(["--store", "postgres://somewhere/db"]).output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("sqlite://"), "the error says what is accepted: {stderr}");
}

#[test]
fn schema_command_prints_the_sdl() {
    let output = Command::new(env!("CARGO_BIN_EXE_pvgraph")).arg("schema").output().unwrap();
    assert!(output.status.success());
    let sdl = String::from_utf8(output.stdout).unwrap();
    assert!(sdl.contains("type Query") && sdl.contains("interface Node"));
}
