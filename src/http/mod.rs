//! The HTTP surface: GraphQL at `/graphql` (POST, GET for queries, and
//! WebSocket for subscriptions), GraphiQL at `/` and for browsers at
//! `/graphql`, the trace explorer at `/explore`, `/healthz` (alive),
//! `/readyz` (the store answers) and `/metrics` (Prometheus).

mod apq;
mod auth;
mod graphql_http;
pub mod limits;
mod metrics;
mod pages;
mod ws;

use std::sync::Arc;
use std::time::Duration;

use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

pub use apq::{PersistedQueries, sha256_hex};
pub use metrics::Metrics;
pub use pages::EXAMPLES;

use crate::auth::Authenticator;
use crate::graphql::{Api, ChangeFeed};
use crate::limits::Limits;
use crate::store::Store;
use graphql_http::{MediaType, RawRequest};

/// The header that carries a request's id.
const REQUEST_ID: header::HeaderName = header::HeaderName::from_static("x-request-id");
/// How much longer than a GraphQL execution a whole request may take (reading its body, say).
const REQUEST_GRACE: Duration = Duration::from_secs(1);

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub schema: Api,
    pub store: Store,
    pub feed: ChangeFeed,
    pub metrics: Arc<Metrics>,
    pub queries: Arc<PersistedQueries>,
    pub ws_init_timeout: Duration,
    /// Who may call: API tokens, JWTs, anonymous readers.
    pub auth: Authenticator,
    pub limits: Arc<Limits>,
    pub rate: Option<Arc<limits::RateLimits>>,
    /// Other governments' instances that requests may reach into (`--partner`).
    pub partners: Option<Arc<crate::partner::Partners>>,
}

/// What a server is configured with beyond its store.
pub struct HttpOptions {
    /// The persisted queries known from the start, and whether only they run.
    pub queries: PersistedQueries,
    /// How long a WebSocket client may take to send connection_init.
    pub ws_init_timeout: Duration,
    /// What one request may cost (see `Limits`).
    pub limits: Limits,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            queries: PersistedQueries::default(),
            ws_init_timeout: ws::INIT_TIMEOUT,
            limits: Limits::default(),
        }
    }
}

impl AppState {
    /// The state of a server with the default limits.
    pub fn new(store: Store) -> AppState {
        AppState::with_options(store, HttpOptions::default())
    }

    /// API tokens and anonymous readers; see `with_auth` for JWTs and closing anonymous access.
    pub fn with_options(store: Store, options: HttpOptions) -> AppState {
        let feed = ChangeFeed::default();
        let metrics = Arc::new(Metrics::new());
        let store = metrics.timed(store);
        let limits = options.limits;
        let schema = crate::graphql::api_with(store.clone(), feed.clone(), &limits);
        AppState {
            schema,
            feed,
            metrics,
            queries: Arc::new(options.queries),
            ws_init_timeout: options.ws_init_timeout,
            auth: Authenticator::new(store.clone()),
            store,
            rate: limits::RateLimits::new(&limits),
            partners: None,
            limits: Arc::new(limits),
        }
    }

    /// The state of a server under `limits`, otherwise as `new`.
    pub fn with_limits(store: Store, limits: Limits) -> AppState {
        AppState::with_options(store, HttpOptions { limits, ..HttpOptions::default() })
    }

    /// Decides callers with `auth`. Whatever store it was made with, it asks this state's
    /// store about API tokens (they live in the store the server serves), so that the metrics
    /// count the lookups with the other store calls.
    pub fn with_auth(mut self, auth: Authenticator) -> AppState {
        self.auth = auth.asking(self.store.clone());
        self
    }

    pub fn with_partners(mut self, partners: Arc<crate::partner::Partners>) -> AppState {
        self.partners = Some(partners);
        self
    }
}

/// The router, separate from serving so tests drive it in memory or over TCP.
pub fn app(state: AppState) -> Router {
    let limits = state.limits.clone();
    let router = Router::new()
        .merge(pages::routes())
        .route("/graphql", get(graphql_get).post(graphql_post))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics::scrape))
        .layer(RequestBodyLimitLayer::new(limits.max_body_bytes as usize))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            limits.request_timeout() + REQUEST_GRACE,
        ))
        .layer(axum::middleware::map_response_with_state(limits.clone(), limits::json_refusals))
        .layer(axum::middleware::from_fn_with_state(state.rate.clone(), limits::rate_limit));
    let router = match limits::cors(&limits) {
        Some(cors) => router.layer(cors),
        None => router,
    };
    router
        .layer(TraceLayer::new_for_http().make_span_with(|request: &axum::http::Request<axum::body::Body>| {
            let id = request.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
            tracing::info_span!("request", id = %id, method = %request.method(), path = %request.uri().path())
        }))
        // Every request gets an id (or keeps the caller's), logged and sent back in the answer.
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .with_state(state)
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
    request_error_with(status, code, message, serde_json::json!({}))
}

/// A request-level error whose extensions carry more than the code.
fn request_error_with(status: StatusCode, code: &str, message: String, extensions: serde_json::Value) -> Response {
    let mut extensions = extensions;
    extensions["code"] = code.into();
    let body = serde_json::json!({ "errors": [{ "message": message, "extensions": extensions }] });
    (status, Json(body)).into_response()
}

async fn graphql_post(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let media = MediaType::negotiate(&headers);
    match RawRequest::from_body(&headers, &body) {
        Ok(request) => graphql_http::run(&state, &headers, media, request, false).await,
        Err(e) => e.into_response(media),
    }
}

async fn graphql_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    // A WebSocket upgrade carries subscriptions (graphql-transport-ws, or the older graphql-ws).
    if let Ok(upgrade) = upgrade {
        let Some(protocol) = ws::protocol(&headers) else {
            return request_error(
                StatusCode::BAD_REQUEST,
                "BAD_REQUEST",
                "the WebSocket subprotocol must be graphql-transport-ws or graphql-ws".into(),
            );
        };
        // Browsers cannot set headers on a WebSocket: without one, the token may come in connection_init.
        let from_header = match headers.contains_key(header::AUTHORIZATION) {
            true => match auth::caller(&state.auth, &headers).await {
                Ok(caller) => Some(caller),
                Err(refused) => return refused,
            },
            false => None,
        };
        return upgrade
            .protocols(ALL_WEBSOCKET_PROTOCOLS)
            .on_upgrade(move |socket| ws::serve(socket, state, protocol, from_header))
            .into_response();
    }
    let wants_page = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("text/html"));
    if wants_page && uri.query().is_none() {
        return pages::graphiql(&headers);
    }
    let media = MediaType::negotiate(&headers);
    match RawRequest::from_query_string(uri.query()) {
        Ok(request) => graphql_http::run(&state, &headers, media, request, true).await,
        Err(e) => e.into_response(media),
    }
}
