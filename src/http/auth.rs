//! Who is calling: the bearer token of an HTTP request or of a WebSocket's
//! `connection_init` payload, turned into a `Caller` by `auth::Authenticator`.
//! A bad, expired or revoked token (or none, where anonymous access is off) is
//! answered 401 with a GraphQL error whose code is UNAUTHENTICATED.

use async_graphql::ErrorExtensions as _;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;

use crate::auth::{Admitted, Authenticator};
use crate::domain::{Caller, Error};

use super::request_error;

/// The caller of an HTTP request, or the response that refuses it.
pub async fn caller(auth: &Authenticator, headers: &HeaderMap) -> Result<Caller, Response> {
    async { auth.caller(authorization(headers)?).await }.await.map_err(|error| refusal(&error))
}

/// The caller of an HTTP request as far as it is known when it arrives (see
/// `Authenticator::admit`), or the response that refuses it.
pub async fn admit(auth: &Authenticator, headers: &HeaderMap) -> Result<Admitted, Response> {
    async { auth.admit(authorization(headers)?).await }.await.map_err(|error| refusal(&error))
}

/// The `Authorization` header's value, if there is one.
fn authorization(headers: &HeaderMap) -> Result<Option<&str>, Error> {
    match headers.get(header::AUTHORIZATION).map(|v| v.to_str()) {
        None => Ok(None),
        Some(Ok(value)) => Ok(Some(value)),
        Some(Err(_)) => Err(Error::Unauthenticated("the Authorization header is not text".into())),
    }
}

/// A refused request: 401 for bad credentials, the store's own answer when it could not be asked.
pub fn refusal(error: &Error) -> Response {
    match error {
        Error::Unauthenticated(message) => {
            let mut response = request_error(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", message.clone());
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            response
        }
        other => {
            tracing::warn!(error = ?other, "a token could not be checked");
            request_error(StatusCode::SERVICE_UNAVAILABLE, other.code(), other.to_string())
        }
    }
}

/// The caller of a WebSocket session: a token in the `connection_init` payload
/// (`{"Authorization": "Bearer <token>"}` or `{"token": "<token>"}`) wins over the upgrade
/// request's own header; with neither, the session is anonymous where that is allowed.
pub async fn session_caller(
    auth: &Authenticator,
    from_header: Option<Caller>,
    payload: &serde_json::Value,
) -> async_graphql::Result<Caller> {
    let field = |name: &str| payload.get(name).and_then(|v| v.as_str());
    let outcome = match (field("Authorization").or(field("authorization")), field("token")) {
        (Some(value), _) => auth.caller(Some(value)).await,
        (None, Some(token)) => auth.caller_of_token(token).await,
        (None, None) => match from_header {
            Some(caller) => Ok(caller),
            None => auth.caller(None).await,
        },
    };
    outcome.map_err(|e| {
        let code = e.code();
        async_graphql::Error::new(e.to_string()).extend_with(|_, ext| ext.set("code", code))
    })
}
