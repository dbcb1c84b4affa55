//! A real pvgraph server for integration tests: a SQLite file in a temporary
//! folder, the real router, served over TCP on 127.0.0.1 and spoken to with a
//! real HTTP client.

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
        let store = store::open(&StoreLocation::Sqlite(db.to_owned())).await.expect("the store opens");
        if seed && store.is_empty().await.unwrap() {
            pvgraph::seed::load(&store, pvgraph::seed::KING_COUNTY).await.expect("the seed loads");
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let router = app(AppState::new(store.clone()));
        let task = tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        TestServer { url, store, db: db.to_owned(), client: reqwest::Client::new(), stop: Some(stop), task: Some(task) }
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
