//! GraphQL over HTTP as its specification words it: reading a request from a
//! GET query string or a POST body, choosing the response media type from
//! `Accept`, and the status codes that go with it. Our own extractor rather
//! than async-graphql-axum's, because the specification's status codes and
//! persisted queries both need to see the request's parts before execution.

use std::collections::BTreeMap;

use async_graphql::{ServerError, Variables};
use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::AppState;

/// The specification's own media type for GraphQL responses.
pub const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";

/// The media type a response is written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MediaType {
    /// `application/json`: every well-formed request is answered 200.
    Json,
    /// `application/graphql-response+json`: request errors are answered 4xx.
    GraphQLResponse,
}

impl MediaType {
    /// The media type the `Accept` header prefers; ties in quality go to the earlier entry. With
    /// no `Accept`, or one that names neither, `Json` (the specification lets a server disregard
    /// an `Accept` it cannot meet, which serves browsers and old clients best).
    pub fn negotiate(headers: &HeaderMap) -> MediaType {
        let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
        let mut best: Option<(f32, MediaType)> = None;
        for entry in accept.split(',') {
            let mut parts = entry.split(';');
            let range = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let quality = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            let media = match range.as_str() {
                GRAPHQL_RESPONSE_JSON => MediaType::GraphQLResponse,
                "application/json" | "application/*" | "*/*" => MediaType::Json,
                _ => continue,
            };
            if quality > 0.0 && best.is_none_or(|(q, _)| quality > q) {
                best = Some((quality, media));
            }
        }
        best.map_or(MediaType::Json, |(_, media)| media)
    }

    fn content_type(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            MediaType::Json => "application/json; charset=utf-8",
            MediaType::GraphQLResponse => "application/graphql-response+json; charset=utf-8",
        })
    }
}

/// A GraphQL request as sent, before persisted queries are resolved: the query may be missing.
#[derive(Clone, Debug, Default)]
pub struct RawRequest {
    pub query: Option<String>,
    pub operation_name: Option<String>,
    pub variables: Option<Map<String, Value>>,
    pub extensions: Option<Map<String, Value>>,
}

/// Why a request could not be read; always a 4xx.
#[derive(Debug)]
pub struct Malformed {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl Malformed {
    fn bad(message: impl Into<String>) -> Malformed {
        Malformed { status: StatusCode::BAD_REQUEST, code: "BAD_REQUEST", message: message.into() }
    }
}

impl RawRequest {
    /// Reads the parameters of a GET request's query string; `variables` and `extensions` are JSON.
    pub fn from_query_string(query: Option<&str>) -> Result<RawRequest, Malformed> {
        let mut request = RawRequest::default();
        let pairs = serde_urlencoded_pairs(query.unwrap_or(""))?;
        for (key, value) in pairs {
            match key.as_str() {
                "query" => request.query = Some(value),
                "operationName" => request.operation_name = Some(value).filter(|v| !v.is_empty()),
                "variables" => request.variables = json_object(&value, "variables")?,
                "extensions" => request.extensions = json_object(&value, "extensions")?,
                _ => {}
            }
        }
        Ok(request)
    }

    /// Reads a POST body: a JSON object (`application/json`) or a bare document (`application/graphql`).
    pub fn from_body(headers: &HeaderMap, body: &Bytes) -> Result<RawRequest, Malformed> {
        let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        match essence.as_str() {
            "application/json" => {}
            "application/graphql" => {
                let query = std::str::from_utf8(body).map_err(|_| Malformed::bad("the body is not UTF-8"))?;
                return Ok(RawRequest { query: Some(query.to_owned()), ..RawRequest::default() });
            }
            _ => {
                return Err(Malformed {
                    status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    code: "UNSUPPORTED_MEDIA_TYPE",
                    message: "send GraphQL requests as application/json".into(),
                });
            }
        }
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| Malformed::bad(format!("the request body is not a GraphQL request: {e}")))?;
        let Value::Object(mut fields) = value else {
            return Err(Malformed::bad("the request body must be a JSON object"));
        };
        let text = |value: Option<Value>, name: &str| -> Result<Option<String>, Malformed> {
            match value {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s)),
                Some(_) => Err(Malformed::bad(format!("`{name}` must be a string"))),
            }
        };
        let object = |value: Option<Value>, name: &str| -> Result<Option<Map<String, Value>>, Malformed> {
            match value {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Object(map)) => Ok(Some(map)),
                Some(_) => Err(Malformed::bad(format!("`{name}` must be an object"))),
            }
        };
        Ok(RawRequest {
            query: text(fields.remove("query"), "query")?,
            operation_name: text(fields.remove("operationName"), "operationName")?,
            variables: object(fields.remove("variables"), "variables")?,
            extensions: object(fields.remove("extensions"), "extensions")?,
        })
    }

    /// The request for the executor, once the query is known.
    pub fn into_request(self, query: String) -> async_graphql::Request {
        let mut request = async_graphql::Request::new(query);
        if let Some(name) = self.operation_name {
            request = request.operation_name(name);
        }
        if let Some(variables) = self.variables {
            request = request.variables(Variables::from_json(Value::Object(variables)));
        }
        if let Some(extensions) = self.extensions {
            for (key, value) in extensions {
                if let Ok(value) = async_graphql::Value::from_json(value) {
                    request.extensions.insert(key, value);
                }
            }
        }
        request
    }
}

fn serde_urlencoded_pairs(query: &str) -> Result<Vec<(String, String)>, Malformed> {
    // axum's Query extractor speaks serde_urlencoded; a list of pairs keeps repeated keys visible.
    axum::extract::Query::<Vec<(String, String)>>::try_from_uri(
        &format!("/?{query}").parse().map_err(|_| Malformed::bad("the query string cannot be read"))?,
    )
    .map(|q| q.0)
    .map_err(|e| Malformed::bad(format!("the query string cannot be read: {e}")))
}

fn json_object(text: &str, name: &str) -> Result<Option<Map<String, Value>>, Malformed> {
    if text.is_empty() {
        return Ok(None);
    }
    match serde_json::from_str(text) {
        Ok(Value::Object(map)) => Ok(Some(map)),
        Ok(Value::Null) => Ok(None),
        _ => Err(Malformed::bad(format!("`{name}` must be a JSON object"))),
    }
}

/// A request-level error in GraphQL's response shape: no `data`, one error with a code.
pub fn request_error(media: MediaType, status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let body = json!({ "errors": [{ "message": message.into(), "extensions": { "code": code } }] });
    respond(media, status, &body, HeaderMap::new())
}

impl Malformed {
    pub fn into_response(self, media: MediaType) -> Response {
        request_error(media, self.status, self.code, self.message)
    }
}

/// Writes an executed response. A request error (nothing was executed: the document did not
/// parse or validate, or the variables did not coerce) has no `data`; in the specification's own
/// media type it is answered 400, in `application/json` 200.
pub fn graphql_response(media: MediaType, mut response: async_graphql::Response) -> Response {
    let mut headers = std::mem::take(&mut response.http_headers);
    let request_failed = is_request_error(&response.data, &response.errors);
    // Written straight from async-graphql's values, in the order the query selected its fields;
    // no JSON tree is built in between.
    let body = Body {
        data: (!request_failed).then_some(&response.data),
        errors: &response.errors,
        extensions: &response.extensions,
    };
    let status =
        if request_failed && media == MediaType::GraphQLResponse { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    if let Some(cache) = response.cache_control.value()
        && let Ok(value) = HeaderValue::from_str(&cache)
    {
        headers.insert(header::CACHE_CONTROL, value);
    }
    respond(media, status, &body, headers)
}

/// A response's body: `data` (absent for a request error), then `errors` and `extensions` when
/// there are any.
#[derive(serde::Serialize)]
struct Body<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a async_graphql::Value>,
    #[serde(skip_serializing_if = "<[ServerError]>::is_empty")]
    errors: &'a [ServerError],
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    extensions: &'a BTreeMap<String, async_graphql::Value>,
}

/// Errors without a path and without data mean execution never began.
fn is_request_error(data: &async_graphql::Value, errors: &[ServerError]) -> bool {
    !errors.is_empty() && matches!(data, async_graphql::Value::Null) && errors.iter().all(|e| e.path.is_empty())
}

fn respond(media: MediaType, status: StatusCode, body: &impl serde::Serialize, mut headers: HeaderMap) -> Response {
    headers.insert(header::CONTENT_TYPE, media.content_type());
    // Serialising values that are already in memory fails only on a map with non-text keys,
    // which no GraphQL value has.
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    (status, headers, bytes).into_response()
}

/// Resolves a request's query (persisted queries included), refuses what a GET may not run, and
/// executes it.
pub async fn run(
    state: &AppState,
    headers: &HeaderMap,
    media: MediaType,
    request: RawRequest,
    via_get: bool,
) -> Response {
    let admitted = match super::auth::admit(&state.auth, headers).await {
        Ok(admitted) => admitted,
        Err(refused) => return refused,
    };
    let query = match state.queries.resolve(&request) {
        Ok(query) => query,
        Err(refusal) => {
            // A missing query is a malformed request; the others are GraphQL request errors.
            let status = if refusal.code == "BAD_REQUEST" || media == MediaType::GraphQLResponse {
                StatusCode::BAD_REQUEST
            } else {
                StatusCode::OK
            };
            return request_error(media, status, refusal.code, refusal.message);
        }
    };
    // GET is for reading: a mutation over GET could be triggered by a link.
    if via_get && !only_queries(&query) {
        let mut response = request_error(
            media,
            StatusCode::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
            "mutations and subscriptions are not accepted over GET; use POST",
        );
        response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("POST"));
        return response;
    }
    let started = std::time::Instant::now();
    // One still running after `--request-timeout` is dropped (its work is cancelled at the next
    // await) and answered with TIMEOUT.
    match tokio::time::timeout(state.limits.request_timeout(), execute(state, request, query, admitted)).await {
        Ok(Ok((response, operation))) => {
            state.metrics.record_request(&operation, started.elapsed().as_secs_f64(), response.is_err());
            graphql_response(media, response)
        }
        Ok(Err(refused)) => refused,
        Err(_) => {
            tracing::warn!(limit = state.limits.request_timeout, "a request ran out of time and was cancelled");
            super::limits::timed_out(&state.limits)
        }
    }
}

/// Executes a request as its caller. A caller admitted ahead of the store's confirmation is
/// executed alongside it: the answer waits for it, and is refused if it refuses the caller; a
/// caller confirmed as someone else (their token's grant was rewritten) is executed again as
/// that caller. The writes of such a request wait too (`Visible`). A mutation on a store that
/// confirms callers itself is not confirmed alongside: the store checks the token in the
/// statement that writes, and the confirmation is asked apart only if it did not.
async fn execute(
    state: &AppState,
    request: RawRequest,
    query: String,
    admitted: crate::auth::Admitted,
) -> Result<(async_graphql::Response, crate::graphql::Operation), Response> {
    let run = |request: RawRequest, query, caller, confirmation| {
        state.schema.run_as(request.into_request(query), &state.store, caller, confirmation, state.partners.as_ref())
    };
    let Some(confirmation) = admitted.confirmation else {
        return Ok(run(request, query, admitted.caller, None).await);
    };
    // Needed again only if the caller turns out to be someone else.
    let again = (request.clone(), query.clone());
    let (confirmed, answer) = if state.store.confirms_callers() && !only_queries(&query) {
        let answer = run(request, query, admitted.caller.clone(), Some(confirmation.clone())).await;
        (confirmation.outcome().await, answer)
    } else {
        // The confirmation is polled first, so that its lookup is on its way before the
        // request's parsing and validation take the thread.
        tokio::join!(confirmation.outcome(), run(request, query, admitted.caller.clone(), Some(confirmation.clone())))
    };
    match confirmed {
        Ok(caller) if caller == admitted.caller => Ok(answer),
        Ok(caller) => Ok(run(again.0, again.1, caller, None).await),
        Err(error) => Err(super::auth::refusal(&error)),
    }
}

/// Whether every operation of a document is a query; a GET runs no document that holds a
/// mutation, whichever operation it names. A document that does not parse is left to the
/// executor, which reports it.
fn only_queries(query: &str) -> bool {
    use async_graphql::parser::types::OperationType;
    // Any other operation is named by its keyword; most documents need no parse to tell.
    if !query.contains("mutation") && !query.contains("subscription") {
        return true;
    }
    let Ok(document) = async_graphql::parser::parse_query(query) else {
        return true;
    };
    document.operations.iter().all(|(_, op)| op.node.ty == OperationType::Query)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> MediaType {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_str(value).unwrap());
        MediaType::negotiate(&headers)
    }

    #[test]
    fn accept_picks_the_highest_quality_then_the_first() {
        assert_eq!(MediaType::negotiate(&HeaderMap::new()), MediaType::Json);
        assert_eq!(accept("application/graphql-response+json"), MediaType::GraphQLResponse);
        assert_eq!(accept("application/graphql-response+json, application/json;q=0.9"), MediaType::GraphQLResponse);
        assert_eq!(accept("application/json, application/graphql-response+json"), MediaType::Json);
        assert_eq!(accept("application/graphql-response+json;q=0.5, */*"), MediaType::Json);
        assert_eq!(accept("text/html"), MediaType::Json);
        assert_eq!(accept("application/graphql-response+json;q=0, application/json;q=0.1"), MediaType::Json);
    }
}
