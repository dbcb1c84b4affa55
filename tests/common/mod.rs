//! A real pvgraph server for integration tests: a SQLite file in a temporary
//! folder, the real router, served over TCP on 127.0.0.1 and spoken to with a
//! real HTTP client.
//!
//! With `PVGRAPH_TEST_BACKEND=neo4j` (and `PVGRAPH_TEST_NEO4J` holding a Bolt
//! URI) the same tests run on Neo4j instead: the tests of one binary then take
//! turns, each starting from an emptied graph, because they share one database.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use pvgraph::http::{AppState, app};
use pvgraph::store::{self, Store, StoreLocation};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub struct TestServer {
    pub url: String,
    pub store: Store,
    pub db: PathBuf,
    client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    _turn: Option<tokio::sync::MutexGuard<'static, ()>>,
}

/// The Neo4j URI when the tests run on Neo4j.
pub fn neo4j_uri() -> Option<String> {
    let on_neo4j = std::env::var("PVGRAPH_TEST_BACKEND").is_ok_and(|b| b == "neo4j");
    on_neo4j.then(|| std::env::var("PVGRAPH_TEST_NEO4J").expect("PVGRAPH_TEST_NEO4J names the Neo4j server"))
}

/// True (with a note) when a test needs the SQLite file itself and the suite runs on Neo4j.
pub fn sqlite_only(why: &str) -> bool {
    let skip = neo4j_uri().is_some();
    if skip {
        eprintln!("note: runs on SQLite only ({why})");
    }
    skip
}

fn neo4j_options() -> pvgraph::store::Neo4jOptions {
    let var = |name: &str, default: &str| std::env::var(name).ok().filter(|v| !v.is_empty()).unwrap_or(default.into());
    pvgraph::store::Neo4jOptions {
        user: var("PVGRAPH_NEO4J_USER", "neo4j"),
        password: var("PVGRAPH_NEO4J_PASSWORD", "pvgraph-dev-password"),
        ..pvgraph::store::Neo4jOptions::default()
    }
}

/// Serialises the tests of one binary on Neo4j: they share one database.
static NEO4J_TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Opens the store under test: the SQLite file at `db`, or the emptied Neo4j graph.
async fn open_store(db: &Path) -> (Store, Option<tokio::sync::MutexGuard<'static, ()>>) {
    let Some(uri) = neo4j_uri() else {
        return (store::open(&StoreLocation::Sqlite(db.to_owned())).await.expect("the store opens"), None);
    };
    let turn = NEO4J_TURN.lock().await;
    let options = neo4j_options();
    let store = store::open_with(&uri.parse().expect("a Bolt URI"), &options).await.expect("the Neo4j store opens");
    let config = neo4rs::ConfigBuilder::default().uri(uri.as_str()).user(options.user).password(options.password);
    let graph = neo4rs::Graph::connect(config.build().unwrap()).expect("a Neo4j connection");
    graph.run(neo4rs::query("MATCH (n) DETACH DELETE n")).await.expect("the graph is emptied");
    (store, Some(turn))
}

/// A temporary folder that lives as long as the test holds it.
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("a temporary folder")
}

impl TestServer {
    /// A server over an empty store in `dir`.
    pub async fn empty(dir: &Path) -> TestServer {
        TestServer::at(&dir.join("pvgraph.db"), false).await
    }

    /// A server over a store seeded with the King County data.
    pub async fn seeded(dir: &Path) -> TestServer {
        TestServer::at(&dir.join("pvgraph.db"), true).await
    }

    /// A server over the SQLite file at `db`, seeding it first when asked and empty.
    pub async fn at(db: &Path, seed: bool) -> TestServer {
        TestServer::limited(db, seed, pvgraph::limits::Limits::default()).await
    }

    /// A server under `limits`, over the SQLite file at `db`, seeded when asked and empty.
    pub async fn limited(db: &Path, seed: bool, limits: pvgraph::limits::Limits) -> TestServer {
        let (store, turn) = open_store(db).await;
        if seed && store.is_empty().await.unwrap() {
            pvgraph::seed::load(&store, pvgraph::seed::KING_COUNTY).await.expect("the seed loads");
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        // With connection info, as the binary serves: the rate limit sees client addresses.
        let router = app(AppState::with_limits(store.clone(), limits))
            .into_make_service_with_connect_info::<std::net::SocketAddr>();
        let task = tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        TestServer {
            url,
            store,
            db: db.to_owned(),
            client: reqwest::Client::new(),
            stop: Some(stop),
            task: Some(task),
            _turn: turn,
        }
    }

    /// Stops the server and waits until it has closed.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap();
        }
    }

    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// POSTs a GraphQL request and returns the whole response body.
    pub async fn gql(&self, query: &str, variables: Value) -> Value {
        let response = self
            .client
            .post(format!("{}/graphql", self.url))
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await
            .expect("the server answers");
        response.json().await.expect("the answer is JSON")
    }

    /// Like `gql`, but fails the test on any error and returns `data`.
    pub async fn data(&self, query: &str, variables: Value) -> Value {
        let body = self.gql(query, variables).await;
        assert!(body.get("errors").is_none(), "unexpected errors: {body:#}");
        body["data"].clone()
    }

    /// Like `gql`, but expects an error and returns its `extensions.code`.
    pub async fn error_code(&self, query: &str, variables: Value) -> String {
        let body = self.gql(query, variables).await;
        let code = body["errors"][0]["extensions"]["code"].as_str();
        code.unwrap_or_else(|| panic!("expected an error with a code, got {body:#}")).to_owned()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The King County seed read as plain JSON: an oracle that owes nothing to pvgraph's code.
pub struct Seed {
    pub nodes: std::collections::BTreeMap<String, Value>,
    pub relationships: Vec<Value>,
}

pub fn seed() -> Seed {
    let file: Value = serde_json::from_str(pvgraph::seed::KING_COUNTY).expect("the seed is JSON");
    let nodes = file["nodes"].as_array().unwrap().iter().map(|n| (text(&n["id"]), n.clone())).collect();
    Seed { nodes, relationships: file["relationships"].as_array().unwrap().clone() }
}

/// A JSON string's text; anything else fails the test.
pub fn text(v: &Value) -> String {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}")).to_owned()
}

/// Runs the built binary, failing the test when it fails.
pub async fn pvgraph(args: &[&str]) -> std::process::Output {
    let out = pvgraph_outcome(args).await;
    assert!(out.status.success(), "pvgraph {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    out
}

/// Runs the built binary, whatever comes of it.
pub async fn pvgraph_outcome(args: &[&str]) -> std::process::Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_pvgraph"))
        .args(args)
        .env_remove("PVGRAPH_STORE")
        .output()
        .await
        .expect("the binary runs")
}

/// Sends a mutation to the server at `url`; every mutation of the tests that run the binary goes
/// through here (one place to add credentials). `None` when it was not acknowledged: no answer,
/// or an answer with errors.
pub async fn mutate_at(client: &reqwest::Client, url: &str, query: &str, variables: Value) -> Option<Value> {
    let request = client.post(format!("{url}/graphql")).json(&json!({ "query": query, "variables": variables }));
    let body: Value = request.send().await.ok()?.json().await.ok()?;
    body.get("errors").is_none().then(|| body["data"].clone())
}

/// Creates a node owned by `acme` with a `create…` mutation, returning its id.
pub async fn create_acme(server: &TestServer, mutation: &str, input: Value) -> String {
    let ty = format!("{}{}", mutation[6..7].to_uppercase(), &mutation[7..]);
    let query = format!("mutation($i: Create{ty}Input!) {{ {mutation}(input: $i) {{ id }} }}");
    let mut input = input;
    input["organisation"] = json!("acme");
    text(&server.data(&query, json!({ "i": input })).await[mutation]["id"])
}

/// Starts the built binary serving the SQLite file `db` on an ephemeral port, with `args`
/// added; returns the child (killed when dropped) and its base URL, read from its log.
pub async fn serve_binary(db: &Path, args: &[&str]) -> (tokio::process::Child, String) {
    use tokio::io::AsyncBufReadExt;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_pvgraph"))
        .args(["serve", "--listen", "127.0.0.1:0", "--store"])
        .arg(format!("sqlite://{}", db.display()))
        .args(args)
        .env_remove("PVGRAPH_STORE")
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the binary starts");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let url = loop {
        let line = lines.next_line().await.unwrap().expect("the server logs its address before it exits");
        if let Some(at) = line.find("http://") {
            let url = line[at..].split_whitespace().next().unwrap();
            break url.trim_end_matches('/').to_owned();
        }
    };
    // Keep reading the log so that the server never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, url)
}
