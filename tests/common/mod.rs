//! A real pvgraph server for integration tests: a SQLite file in a temporary
//! folder, the real router, served over TCP on 127.0.0.1 and spoken to with a
//! real HTTP client.
//!
//! Who the tests speak as. The server accepts JWTs signed with
//! [`TEST_JWT_SECRET`] (HS256), besides API tokens and anonymous readers.
//! * `server.gql/data/error_code(query, variables)` speak as an **admin of the
//!   organisation the operation names first**: the first `organisation`
//!   argument or node id (`<org>:<kind>:…`) in the query text, then in the
//!   variables; `kc` when none is named. So a test that creates `acme` nodes,
//!   or changes `kc` ones, just works; a PRIVATE node of another organisation
//!   stays hidden from it, as it should.
//! * For a given caller: `server.anonymous()`, `server.member("acme", "editor")`
//!   or `server.bearer(token)` give a [`Client`] with the same `gql`, `data` and
//!   `error_code`, and `post` for the HTTP status too; `server.authorized(header)`
//!   sends any `Authorization` header value as it is.
//! * `server.jwt(organisation, role)` signs a JWT (valid an hour, `sub` "test").
//! * `TestServer::with_auth(db, seed, |store| Authenticator…)` starts a server
//!   with other settings (RS256 keys, anonymous access off).
//!
//! With `PVGRAPH_TEST_BACKEND=neo4j` (and `PVGRAPH_TEST_NEO4J` holding a Bolt
//! URI) the same tests run on Neo4j instead: the tests of one binary then take
//! turns, each starting from an emptied graph, because they share one database.

#![allow(dead_code)]

pub mod counting;

use std::path::{Path, PathBuf};

use pvgraph::auth::{Authenticator, Claims, JwtKey, JwtSettings};
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

/// The user and password of the Neo4j under test, from the environment.
pub fn neo4j_options() -> pvgraph::store::Neo4jOptions {
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
pub async fn open_store(db: &Path) -> (Store, Option<tokio::sync::MutexGuard<'static, ()>>) {
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

    /// A server over the SQLite file at `db`, seeding it first when asked and empty; it takes
    /// API tokens, JWTs signed with `TEST_JWT_SECRET`, and anonymous readers.
    pub async fn at(db: &Path, seed: bool) -> TestServer {
        TestServer::configured(db, seed, pvgraph::http::HttpOptions::default(), test_authenticator).await
    }

    /// Like `at`, with the authenticator `auth` makes over the store.
    pub async fn with_auth(db: &Path, seed: bool, auth: impl FnOnce(Store) -> Authenticator) -> TestServer {
        TestServer::configured(db, seed, pvgraph::http::HttpOptions::default(), auth).await
    }

    /// A server under `limits`, over the SQLite file at `db`, seeded when asked and empty.
    pub async fn limited(db: &Path, seed: bool, limits: pvgraph::limits::Limits) -> TestServer {
        let options = pvgraph::http::HttpOptions { limits, ..Default::default() };
        TestServer::configured(db, seed, options, test_authenticator).await
    }

    /// A seeded server in `dir` with options of its own.
    pub async fn with_options(dir: &Path, options: pvgraph::http::HttpOptions) -> TestServer {
        TestServer::configured(&dir.join("pvgraph.db"), true, options, test_authenticator).await
    }

    async fn configured(
        db: &Path,
        seed: bool,
        options: pvgraph::http::HttpOptions,
        auth: impl FnOnce(Store) -> Authenticator,
    ) -> TestServer {
        let (store, turn) = open_store(db).await;
        if seed && store.is_empty().await.unwrap() {
            pvgraph::seed::load(&store, pvgraph::seed::KING_COUNTY).await.expect("the seed loads");
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        // With connection info, as the binary serves: the rate limit sees client addresses.
        let router = app(AppState::with_options(store.clone(), options).with_auth(auth(store.clone())))
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

    /// POSTs a GraphQL request as an admin of the organisation it names first, and returns the
    /// whole response body.
    pub async fn gql(&self, query: &str, variables: Value) -> Value {
        let organisation = acting_organisation(query, &variables);
        self.member(&organisation, "admin").gql(query, variables).await
    }

    /// Like `gql`, but fails the test on any error and returns `data`.
    pub async fn data(&self, query: &str, variables: Value) -> Value {
        let body = self.gql(query, variables).await;
        assert!(body.get("errors").is_none(), "unexpected errors: {body:#}");
        body["data"].clone()
    }

    /// Like `gql`, but expects an error and returns its `extensions.code`.
    pub async fn error_code(&self, query: &str, variables: Value) -> String {
        first_code(&self.gql(query, variables).await)
    }

    /// A JWT for a member of an organisation (`role`: viewer, editor or admin), signed with the
    /// test secret, valid for an hour.
    pub fn jwt(&self, organisation: &str, role: &str) -> String {
        test_jwt(organisation, role)
    }

    /// Speaks without a token.
    pub fn anonymous(&self) -> Client<'_> {
        Client { server: self, authorization: None }
    }

    /// Speaks as a member of an organisation, with a JWT.
    pub fn member(&self, organisation: &str, role: &str) -> Client<'_> {
        self.bearer(&self.jwt(organisation, role))
    }

    /// Speaks with this token (an API token or a JWT).
    pub fn bearer(&self, token: &str) -> Client<'_> {
        self.authorized(&format!("Bearer {token}"))
    }

    /// Speaks with this whole `Authorization` header value, e.g. `Basic …` or a bare `Bearer `.
    pub fn authorized(&self, header: &str) -> Client<'_> {
        Client { server: self, authorization: Some(header.to_owned()) }
    }
}

/// Requests as one caller; see the module documentation.
pub struct Client<'a> {
    server: &'a TestServer,
    /// The whole `Authorization` header value, if any.
    pub authorization: Option<String>,
}

impl Client<'_> {
    /// POSTs a GraphQL request; the HTTP status and the body.
    pub async fn post(&self, query: &str, variables: Value) -> (u16, Value) {
        let mut request = self
            .server
            .client
            .post(format!("{}/graphql", self.server.url))
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(value) = &self.authorization {
            request = request.header("authorization", value);
        }
        let response = request.send().await.expect("the server answers");
        let status = response.status().as_u16();
        (status, response.json().await.expect("the answer is JSON"))
    }

    pub async fn gql(&self, query: &str, variables: Value) -> Value {
        self.post(query, variables).await.1
    }

    pub async fn data(&self, query: &str, variables: Value) -> Value {
        let body = self.gql(query, variables).await;
        assert!(body.get("errors").is_none(), "unexpected errors: {body:#}");
        body["data"].clone()
    }

    pub async fn error_code(&self, query: &str, variables: Value) -> String {
        first_code(&self.gql(query, variables).await)
    }
}

fn first_code(body: &Value) -> String {
    let code = body["errors"][0]["extensions"]["code"].as_str();
    code.unwrap_or_else(|| panic!("expected an error with a code, got {body:#}")).to_owned()
}

/// The HS256 secret test servers accept JWTs signed with.
pub const TEST_JWT_SECRET: &str = "pvgraph-tests-only-secret-0123456789abcdef";

/// What `TestServer::at` serves with: API tokens, test JWTs, anonymous readers.
pub fn test_authenticator(store: Store) -> Authenticator {
    let jwt = JwtSettings::new(JwtKey::Hs256(TEST_JWT_SECRET.as_bytes().to_vec()), None, None).unwrap();
    Authenticator::new(store).with_jwt(jwt)
}

/// Signs claims with the test secret.
pub fn sign_hs256(claims: &Claims) -> String {
    let key = jsonwebtoken::EncodingKey::from_secret(TEST_JWT_SECRET.as_bytes());
    jsonwebtoken::encode(&jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256), claims, &key).unwrap()
}

/// Claims of a member, expiring `seconds` from now (negative: already expired).
pub fn claims(organisation: &str, role: &str, seconds: i64) -> Claims {
    let exp = (chrono::Utc::now().timestamp() + seconds).max(0) as u64;
    Claims { sub: Some("test".into()), organisation: organisation.into(), role: role.into(), exp, iss: None, aud: None }
}

pub fn test_jwt(organisation: &str, role: &str) -> String {
    sign_hs256(&claims(organisation, role, 3600))
}

const KIND_WORDS: [&str; 7] = ["organisation", "value", "principle", "barrier", "experiment", "learning", "source"];

/// The organisation an operation names first (see the module documentation); `kc` when none.
pub fn acting_organisation(query: &str, variables: &Value) -> String {
    let text = format!("{query}\n{variables}");
    let slug = |c: char| c.is_ascii_alphanumeric() || c == '-';
    // Runs of slug characters with their byte offsets.
    let mut words: Vec<(usize, &str)> = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices().chain(std::iter::once((text.len(), ' '))) {
        match (slug(c), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                words.push((s, &text[s..i]));
                start = None;
            }
            _ => {}
        }
    }
    for (n, &(at, word)) in words.iter().enumerate() {
        let Some(&(next_at, next)) = words.get(n + 1) else { break };
        let between = &text[at + word.len()..next_at];
        // `acme:value:…`: an id.
        let is_slug = |w: &str| pvgraph::domain::NodeId::organisation_node(w).is_ok();
        if between == ":"
            && is_slug(word)
            && KIND_WORDS.contains(&next)
            && text[next_at + next.len()..].starts_with(':')
        {
            return word.to_owned();
        }
        // `organisation: "acme"`, `"organisation":"acme"`, `organisation: \"acme\"`.
        if word == "organisation"
            && between.contains(':')
            && between.chars().all(|c| matches!(c, ':' | '"' | '\\' | ' '))
            && is_slug(next)
        {
            return next.to_owned();
        }
    }
    "kc".to_owned()
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
/// It acts as an admin of the organisation the operation names (see `acting_organisation`), with a
/// JWT the servers of `serve_binary` accept.
pub async fn mutate_at(client: &reqwest::Client, url: &str, query: &str, variables: Value) -> Option<Value> {
    let admin = test_jwt(&acting_organisation(query, &variables), "admin");
    let request = client
        .post(format!("{url}/graphql"))
        .bearer_auth(admin)
        .json(&json!({ "query": query, "variables": variables }));
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

/// A WebSocket client connection, as tests open them.
pub type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The next JSON message on a WebSocket, skipping pings; None once the server closed it.
pub async fn ws_next(socket: &mut Socket) -> Option<Value> {
    use futures::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    loop {
        let message = tokio::time::timeout(std::time::Duration::from_secs(10), socket.next())
            .await
            .expect("the server answers within ten seconds")?;
        match message.ok()? {
            Message::Text(text) => {
                let value: Value = serde_json::from_str(&text).unwrap();
                if value["type"] != "ping" {
                    return Some(value);
                }
            }
            Message::Close(_) => return None,
            _ => {}
        }
    }
}

/// Starts the built binary serving the SQLite file `db` on an ephemeral port, with `args`
/// added; returns the child (killed when dropped) and its base URL, read from its log.
pub async fn serve_binary(db: &Path, args: &[&str]) -> (tokio::process::Child, String) {
    serve_binary_at(db, &format!("sqlite://{}", db.display()), "127.0.0.1:0", args, &[]).await
}

/// Like `serve_binary`, on the store at `store`, listening at `listen`, with `env` added to its
/// environment (`db` only places the JWT secret's file).
pub async fn serve_binary_at(
    db: &Path,
    store: &str,
    listen: &str,
    args: &[&str],
    env: &[(String, String)],
) -> (tokio::process::Child, String) {
    use tokio::io::AsyncBufReadExt;
    // It accepts the tests' JWTs, as `mutate_at` sends them.
    let secret = db.with_extension("jwt-secret");
    std::fs::write(&secret, TEST_JWT_SECRET).expect("the secret is written");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_pvgraph"))
        .args(["serve", "--listen", listen, "--store", store])
        .arg("--jwt-hs256-secret-file")
        .arg(&secret)
        .args(args)
        .env_remove("PVGRAPH_STORE")
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
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
