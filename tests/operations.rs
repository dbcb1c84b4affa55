//! What operators watch: liveness, readiness and request ids.

mod common;

use common::{TestServer, temp_dir};
use serde_json::Value;

#[tokio::test]
async fn readyz_says_the_store_answers() {
    let dir = temp_dir();
    let server = TestServer::empty(dir.path()).await;
    let response = server.client().get(format!("{}/readyz", server.url)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ready");
    let backend = if common::neo4j_uri().is_some() { "neo4j" } else { "sqlite" };
    assert_eq!(body["store"], backend);
}

#[tokio::test]
async fn every_answer_carries_a_request_id_and_keeps_the_callers() {
    let dir = temp_dir();
    let server = TestServer::empty(dir.path()).await;
    let url = format!("{}/healthz", server.url);
    let first = server.client().get(&url).send().await.unwrap();
    let second = server.client().get(&url).send().await.unwrap();
    let id = |r: &reqwest::Response| r.headers().get("x-request-id").map(|v| v.to_str().unwrap().to_owned());
    let (a, b) = (id(&first).expect("an id is given"), id(&second).expect("an id is given"));
    assert_ne!(a, b, "each request gets its own id");
    assert_eq!(a.len(), 36, "a UUID: {a}");

    let mine = server.client().get(&url).header("x-request-id", "trace-me-42").send().await.unwrap();
    assert_eq!(id(&mine).as_deref(), Some("trace-me-42"));
}
