//! The HTTP surface: GraphQL at `/graphql` (POST, GET for queries, and
//! WebSocket for subscriptions), GraphiQL at `/` and for browsers at
//! `/graphql`, `/healthz` (alive) and `/readyz` (the store answers).

use std::sync::Arc;
use std::time::Duration;

use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql::http::GraphiQLSource;
use async_graphql_axum::{
    GraphQLProtocol, GraphQLRequest, GraphQLResponse, GraphQLWebSocket, rejection::GraphQLRejection,
};
use axum::extract::State;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::graphql::{ChangeFeed, Loaders, ParsedQueries, PvSchema, prepare};
use crate::store::Store;

/// The largest request body accepted.
const MAX_BODY: usize = 1 << 20;
/// The header that carries a request's id.
const REQUEST_ID: header::HeaderName = header::HeaderName::from_static("x-request-id");
/// How long one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub schema: PvSchema,
    pub store: Store,
    pub feed: ChangeFeed,
    pub queries: Arc<ParsedQueries>,
}

impl AppState {
    pub fn new(store: Store) -> AppState {
        let feed = ChangeFeed::default();
        let schema = crate::graphql::schema(store.clone(), feed.clone());
        AppState { schema, store, feed, queries: Arc::default() }
    }
}

/// The router, separate from serving so tests drive it in memory or over TCP.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/", get(graphiql))
        .route("/graphql", get(graphql_get).post(graphql_post))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .layer(RequestBodyLimitLayer::new(MAX_BODY))
        .layer(TimeoutLayer::with_status_code(StatusCode::SERVICE_UNAVAILABLE, REQUEST_TIMEOUT))
        .layer(axum::middleware::map_response(json_refusals))
        .layer(TraceLayer::new_for_http().make_span_with(|request: &axum::http::Request<axum::body::Body>| {
            let id = request.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
            tracing::info_span!("request", id = %id, method = %request.method(), path = %request.uri().path())
        }))
        // Every request gets an id (or keeps the caller's), logged and sent back in the answer.
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .with_state(state)
}

/// The body-limit and timeout layers answer in plain text; clients get JSON with a code instead.
async fn json_refusals(response: Response) -> Response {
    let plain = !response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json") || v.contains("html"));
    match response.status() {
        StatusCode::PAYLOAD_TOO_LARGE if plain => request_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
            format!("the request body is larger than {MAX_BODY} bytes"),
        ),
        StatusCode::SERVICE_UNAVAILABLE if plain => request_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "TIMEOUT",
            "the request took too long and was stopped".into(),
        ),
        _ => response,
    }
}

async fn graphiql() -> Html<String> {
    Html(GraphiQLSource::build().endpoint("/graphql").title("pvgraph").finish())
}

async fn healthz() -> &'static str {
    "ok"
}

/// Ready when the store answers; a load balancer sends traffic elsewhere until then.
async fn readyz(State(state): State<AppState>) -> Response {
    match state.store.ping().await {
        Ok(()) => (StatusCode::OK, Json(serde_json::json!({ "status": "ready", "store": state.store.backend() })))
            .into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "the store is not ready");
            let body = serde_json::json!({ "status": "unavailable", "store": state.store.backend() });
            (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
        }
    }
}

/// A request-level error in GraphQL's response shape.
fn request_error(status: StatusCode, code: &str, message: String) -> Response {
    let body = serde_json::json!({ "errors": [{ "message": message, "extensions": { "code": code } }] });
    (status, Json(body)).into_response()
}

fn rejection(rejection: GraphQLRejection) -> Response {
    use async_graphql::ParseRequestError as E;
    match rejection.0 {
        E::PayloadTooLarge => {
            request_error(StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE", "the request body is too large".into())
        }
        E::InvalidRequest(e) => request_error(
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            format!("the request body is not a GraphQL request: {e}"),
        ),
        other => request_error(StatusCode::BAD_REQUEST, "BAD_REQUEST", format!("the request cannot be read: {other}")),
    }
}

async fn graphql_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    request: Result<GraphQLRequest, GraphQLRejection>,
) -> Response {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json") || v.starts_with("application/graphql"));
    if !json {
        return request_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            "send GraphQL requests as application/json".into(),
        );
    }
    match request {
        Ok(request) => execute(&state, request.into_inner()).await,
        Err(e) => rejection(e),
    }
}

async fn graphql_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    protocol: Result<GraphQLProtocol, StatusCode>,
    request: Result<GraphQLRequest, GraphQLRejection>,
) -> Response {
    // A WebSocket upgrade carries subscriptions (graphql-transport-ws, or the older graphql-ws).
    if let Ok(upgrade) = upgrade {
        let Ok(protocol) = protocol else {
            return request_error(
                StatusCode::BAD_REQUEST,
                "BAD_REQUEST",
                "the WebSocket subprotocol must be graphql-transport-ws or graphql-ws".into(),
            );
        };
        return upgrade
            .protocols(ALL_WEBSOCKET_PROTOCOLS)
            .on_upgrade(move |socket| {
                let mut data = async_graphql::Data::default();
                data.insert(Loaders::new(&state.store));
                GraphQLWebSocket::new(socket, state.schema.clone(), protocol).with_data(data).serve()
            })
            .into_response();
    }
    let wants_page = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("text/html"));
    if wants_page && uri.query().is_none() {
        return graphiql().await.into_response();
    }
    let request = match request {
        Ok(request) => request.into_inner(),
        Err(e) => return rejection(e),
    };
    // GET is for reading: a mutation over GET could be triggered by a link.
    if let Ok(doc) = async_graphql::parser::parse_query(&request.query) {
        let mutates =
            doc.operations.iter().any(|(_, op)| op.node.ty != async_graphql::parser::types::OperationType::Query);
        if mutates {
            let mut response = request_error(
                StatusCode::METHOD_NOT_ALLOWED,
                "METHOD_NOT_ALLOWED",
                "mutations and subscriptions are not accepted over GET; use POST".into(),
            );
            response.headers_mut().insert(header::ALLOW, header::HeaderValue::from_static("POST"));
            return response;
        }
    }
    execute(&state, request).await
}

async fn execute(state: &AppState, request: async_graphql::Request) -> Response {
    let request = prepare(state.queries.attach(request), &state.store);
    GraphQLResponse::from(state.schema.execute(request).await).into_response()
}
