//! The floor for `scripts/bench-compare`: the least an HTTP server on axum and
//! tokio can do to answer a GraphQL request, namely read the request and send
//! back a response fixed in advance, of the same size as the real answer.
//!
//!   cargo run --release --example floor -- 127.0.0.1:18103 DIR
//!
//! Every `DIR/NAME.json` is answered, as it is, to `POST /NAME`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::post;

type Answers = Arc<HashMap<String, Bytes>>;

async fn answer(State(answers): State<Answers>, Path(name): Path<String>, _request: Bytes) -> impl IntoResponse {
    match answers.get(&name) {
        Some(body) => Ok(([(header::CONTENT_TYPE, "application/json")], body.clone())),
        None => Err(StatusCode::NOT_FOUND),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(listen), Some(dir)) = (args.next(), args.next()) else {
        anyhow::bail!("usage: floor ADDRESS DIR");
    };
    let mut answers = HashMap::new();
    for entry in std::fs::read_dir(&dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "json") {
            let name = path.file_stem().unwrap_or_default().to_string_lossy().into_owned();
            answers.insert(name, Bytes::from(std::fs::read(&path)?));
        }
    }
    let app = Router::new().route("/{name}", post(answer)).with_state(Arc::new(answers));
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    axum::serve(listener, app).await?;
    Ok(())
}
