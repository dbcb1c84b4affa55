//! The HTTP side of the limits: the rate limit per client address and per
//! bearer token (governor's keyed GCRA limiter), the body-size and time
//! refusals in GraphQL's error shape, and CORS, closed unless origins are given.

use std::hash::{BuildHasher, Hash};
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::limits::Limits;

use super::request_error_with;

/// Whom a request is counted against.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Caller {
    Address(IpAddr),
    /// A bearer token, by a keyed hash: the limiter never holds a token itself.
    Token(u64),
}

/// One GCRA bucket per client address and per token.
pub struct RateLimits {
    limiter: DefaultKeyedRateLimiter<Caller>,
    per_second: u32,
    hasher: std::collections::hash_map::RandomState,
    requests: AtomicU64,
}

/// How often (in requests) buckets that are full again are dropped, so memory stays bounded.
const SWEEP_EVERY: u64 = 4_096;

impl RateLimits {
    /// The limiter the limits ask for, or none when `--rate-limit 0` switches it off.
    pub fn new(limits: &Limits) -> Option<Arc<RateLimits>> {
        let per_second = NonZeroU32::new(limits.rate_limit)?;
        let burst = NonZeroU32::new(limits.rate_limit_burst).unwrap_or(per_second);
        Some(Arc::new(RateLimits {
            limiter: DefaultKeyedRateLimiter::keyed(Quota::per_second(per_second).allow_burst(burst)),
            per_second: per_second.get(),
            hasher: Default::default(),
            requests: AtomicU64::new(0),
        }))
    }

    /// Counts one request; when the caller is over its rate, how many seconds to wait.
    fn admit(&self, callers: &[Caller]) -> Result<(), u64> {
        if self.requests.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.limiter.retain_recent();
        }
        for caller in callers {
            if let Err(not_until) = self.limiter.check_key(caller) {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                return Err((wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1));
            }
        }
        Ok(())
    }
}

/// The rate limit as a middleware: every request counts against its client address (when the
/// server knows it) and, when it carries one, its bearer token. Over the rate: 429 with
/// `Retry-After` and a GraphQL error with code RATE_LIMITED.
pub async fn rate_limit(State(rate): State<Option<Arc<RateLimits>>>, request: Request, next: Next) -> Response {
    let Some(rate) = rate else { return next.run(request).await };
    let mut callers = Vec::with_capacity(2);
    if let Some(ConnectInfo(address)) = request.extensions().get::<ConnectInfo<SocketAddr>>() {
        callers.push(Caller::Address(address.ip()));
    }
    let token = request.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    if let Some(token) = token.and_then(|v| v.strip_prefix("Bearer ")).map(str::trim).filter(|t| !t.is_empty()) {
        callers.push(Caller::Token(rate.hasher.hash_one(token)));
    }
    match rate.admit(&callers) {
        Ok(()) => next.run(request).await,
        Err(wait) => {
            let mut response = request_error_with(
                StatusCode::TOO_MANY_REQUESTS,
                "RATE_LIMITED",
                format!("too many requests; this server allows {} a second; retry in {wait} s", rate.per_second),
                serde_json::json!({ "limit": "rate-limit", "max": rate.per_second, "retryAfter": wait }),
            );
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(wait));
            response
        }
    }
}

/// The body-limit and timeout layers answer in plain text; clients get JSON with a code instead.
pub async fn json_refusals(State(limits): State<Arc<Limits>>, response: Response) -> Response {
    let plain = !response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json") || v.contains("html"));
    match response.status() {
        StatusCode::PAYLOAD_TOO_LARGE if plain => too_large(limits.max_body_bytes),
        StatusCode::SERVICE_UNAVAILABLE if plain => timed_out(&limits),
        _ => response,
    }
}

/// The answer to a body over `--max-body-bytes`.
pub fn too_large(max: u32) -> Response {
    request_error_with(
        StatusCode::PAYLOAD_TOO_LARGE,
        "PAYLOAD_TOO_LARGE",
        format!("the request body is larger than the limit of {max} bytes"),
        serde_json::json!({ "limit": "max-body-bytes", "max": max }),
    )
}

/// The answer to a request still running after `--request-timeout`.
pub fn timed_out(limits: &Limits) -> Response {
    request_error_with(
        StatusCode::SERVICE_UNAVAILABLE,
        "TIMEOUT",
        format!("the request ran longer than the limit of {} s and was cancelled", limits.request_timeout),
        serde_json::json!({ "limit": "request-timeout", "max": limits.request_timeout }),
    )
}

/// CORS for the configured origins; none configured, no layer, and browsers keep other
/// origins' pages from reading any answer.
pub fn cors(limits: &Limits) -> Option<CorsLayer> {
    let origins: Vec<HeaderValue> =
        limits.cors_origins.iter().filter_map(|o| HeaderValue::from_str(o.trim_end_matches('/')).ok()).collect();
    (!origins.is_empty()).then(|| {
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([Method::GET, Method::POST])
            .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION])
            .max_age(std::time::Duration::from_secs(3600))
    })
}

/// Reads a `--cors-origin`: a scheme and a host, as browsers send it in `Origin`.
pub fn parse_origin(text: &str) -> Result<String, String> {
    let origin = text.trim().trim_end_matches('/');
    let Some((scheme, host)) = origin.split_once("://") else {
        return Err(format!("`{text}` is not an origin such as https://app.example.org"));
    };
    let fine = matches!(scheme, "http" | "https")
        && !host.is_empty()
        && !host.contains(['/', '?', '#', ' '])
        && HeaderValue::from_str(origin).is_ok();
    if fine { Ok(origin.to_owned()) } else { Err(format!("`{text}` is not an origin such as https://app.example.org")) }
}
