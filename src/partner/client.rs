//! Calling one partner: plain GraphQL over HTTP with the token the partner
//! issued, a timeout on every call, and a breaker that stops calling a partner
//! for a while after it failed several times in a row, so a partner that is
//! down costs one timeout, not one per request.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde_json::{Value as Json, json};

use super::{PROTOCOL, PartnerSpec, UnreachableReason};
use crate::domain::{Edge, EdgeRecord, Node, NodeId, RelationshipKind};
use crate::store::TraceDirection;

/// Failures in a row after which a partner is marked down.
const FAILURES_TO_MARK_DOWN: u32 = 5;
/// How long a partner marked down is not called.
const DOWN_FOR: Duration = Duration::from_secs(30);
/// How long a connection may take to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Why a call to a partner gave nothing.
#[derive(Clone, Debug)]
pub struct Failure {
    pub reason: UnreachableReason,
    pub message: String,
}

impl Failure {
    fn new(reason: UnreachableReason, message: impl Into<String>) -> Failure {
        Failure { reason, message: message.into() }
    }
}

/// A walk a partner is asked to make in its own part of the graph.
#[derive(Clone, Debug)]
pub struct WalkRequest {
    /// Where to start: ids the partner owns, or ids of others its relationships may point at.
    pub ids: Vec<NodeId>,
    pub direction: TraceDirection,
    pub via: Vec<RelationshipKind>,
    pub as_of: Option<chrono::NaiveDate>,
    /// How many levels of nodes to expand, the starting ids being the first.
    pub depth: u32,
    /// How many nodes the asker can still take.
    pub max_nodes: usize,
}

/// What a partner's walk gave back.
#[derive(Clone, Debug, Default)]
pub struct WalkAnswer {
    /// The partner's own nodes the walk reached, as the partner shares them.
    pub nodes: Vec<Node>,
    /// Every relationship of every expanded id that way, as far as the partner shows it.
    pub edges: Vec<Edge>,
    /// The ids whose relationships that way are all in `edges`.
    pub expanded: Vec<NodeId>,
    /// Why the walk stopped short, if it did.
    pub truncation: Vec<String>,
}

#[derive(Default)]
struct Breaker {
    failures: u32,
    down_until: Option<Instant>,
}

/// One partner: where it is, the token it issued us, and how it has been answering.
pub struct PartnerClient {
    pub organisation: String,
    url: String,
    token: String,
    http: reqwest::Client,
    timeout: Duration,
    breaker: Mutex<Breaker>,
}

const NODES_QUERY: &str =
    "query PartnerNodes($ids: [ID!]!) { partnerInfo { protocol organisations } partnerNodes(ids: $ids) }";
const WALK_QUERY: &str = "query PartnerWalk($input: PartnerWalkInput!) { partnerInfo { protocol organisations } \
     partnerWalk(input: $input) { nodes edges expanded truncation } }";

impl PartnerClient {
    pub fn new(spec: &PartnerSpec, token: String, timeout: Duration) -> anyhow::Result<PartnerClient> {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("pvgraph/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(PartnerClient {
            organisation: spec.organisation.clone(),
            url: spec.url.clone(),
            token,
            http,
            timeout,
            breaker: Mutex::default(),
        })
    }

    /// The partner's nodes among `ids`, as it shares them with us.
    pub async fn nodes(&self, ids: &[NodeId], budget: Duration) -> Result<Vec<Node>, Failure> {
        let ids: Vec<&str> = ids.iter().map(NodeId::as_str).collect();
        let data = self.call(NODES_QUERY, json!({ "ids": ids }), budget).await?;
        let records = data.get("partnerNodes").and_then(Json::as_array).ok_or_else(|| invalid("no partnerNodes"))?;
        records.iter().map(|r| self.node(r)).collect()
    }

    /// A walk in the partner's part of the graph.
    pub async fn walk(&self, request: &WalkRequest, budget: Duration) -> Result<WalkAnswer, Failure> {
        let input = json!({
            "ids": request.ids.iter().map(NodeId::as_str).collect::<Vec<_>>(),
            "direction": direction_name(request.direction),
            "via": request.via.iter().map(|k| k.to_string()).collect::<Vec<_>>(),
            "asOf": request.as_of.map(|d| d.to_string()),
            "depth": request.depth,
            "maxNodes": request.max_nodes,
            "budgetMs": budget.as_millis() as u64,
        });
        let data = self.call(WALK_QUERY, json!({ "input": input }), budget).await?;
        let walk = data.get("partnerWalk").ok_or_else(|| invalid("no partnerWalk"))?;
        let list = |field: &str| walk.get(field).and_then(Json::as_array).cloned().unwrap_or_default();
        let nodes = list("nodes").iter().map(|r| self.node(r)).collect::<Result<Vec<_>, _>>()?;
        let edges = list("edges").iter().map(|r| self.edge(r)).collect::<Result<Vec<_>, _>>()?;
        let expanded = list("expanded")
            .iter()
            .map(|id| id.as_str().and_then(|t| NodeId::parse(t).ok()).ok_or_else(|| invalid("a malformed id")))
            .collect::<Result<Vec<_>, _>>()?;
        let truncation = list("truncation").iter().filter_map(|t| t.as_str().map(str::to_owned)).collect();
        Ok(WalkAnswer { nodes, edges, expanded, truncation })
    }

    /// A node record the partner sent: it must be valid and the partner's own.
    fn node(&self, record: &Json) -> Result<Node, Failure> {
        let Json::Object(map) = record else { return Err(invalid("a node that is not an object")) };
        let node = Node::from_record(map.clone(), chrono::Utc::now())
            .map_err(|e| invalid(format!("a node record that does not read: {e}")))?;
        if node.organisation() != self.organisation {
            return Err(invalid(format!("it sent {}, which it does not own", node.id)));
        }
        Ok(node)
    }

    /// A relationship record the partner sent: one of its ends must be the partner's.
    fn edge(&self, record: &Json) -> Result<Edge, Failure> {
        let edge = EdgeRecord::from_json(record.clone())
            .and_then(EdgeRecord::into_edge)
            .map_err(|e| invalid(format!("a relationship record that does not read: {e}")))?;
        if edge.from.organisation() != self.organisation && edge.to.organisation() != self.organisation {
            return Err(invalid(format!(
                "it sent a relationship between {} and {}, neither its own",
                edge.from, edge.to
            )));
        }
        Ok(edge)
    }

    /// Runs one query at the partner and returns its `data`, within `budget` and the timeout.
    async fn call(&self, query: &str, variables: Json, budget: Duration) -> Result<Json, Failure> {
        self.may_call()?;
        let limit = self.timeout.min(budget);
        if limit.is_zero() {
            return Err(Failure::new(UnreachableReason::Timeout, "no time left before the request's deadline"));
        }
        let outcome = self.send(query, variables, limit).await;
        self.record(&outcome);
        outcome
    }

    async fn send(&self, query: &str, variables: Json, limit: Duration) -> Result<Json, Failure> {
        let sent = self
            .http
            .post(&self.url)
            .bearer_auth(&self.token)
            .timeout(limit)
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(e) if e.is_timeout() => {
                return Err(Failure::new(UnreachableReason::Timeout, format!("no answer within {}", seconds(limit))));
            }
            Err(e) => {
                return Err(Failure::new(UnreachableReason::Unavailable, format!("cannot reach it: {}", root(&e))));
            }
        };
        let status = response.status();
        let reason = match status.as_u16() {
            200..=299 | 400 => None,
            401 => Some(UnreachableReason::Unauthorised),
            403 | 429 => Some(UnreachableReason::Refused),
            _ if status.is_server_error() => Some(UnreachableReason::Unavailable),
            _ => Some(UnreachableReason::InvalidAnswer),
        };
        if let Some(reason) = reason {
            return Err(Failure::new(reason, format!("it answered HTTP {status}")));
        }
        let body: Json = match response.json().await {
            Ok(body) => body,
            Err(e) if e.is_timeout() => {
                return Err(Failure::new(UnreachableReason::Timeout, format!("no answer within {}", seconds(limit))));
            }
            Err(_) => return Err(invalid("its answer is not JSON")),
        };
        self.read_body(body)
    }

    /// The `data` of an answer, after checking the protocol and any errors it carries.
    fn read_body(&self, mut body: Json) -> Result<Json, Failure> {
        if let Some(error) = body.get("errors").and_then(Json::as_array).and_then(|e| e.first()) {
            let code = error.pointer("/extensions/code").and_then(Json::as_str).unwrap_or("");
            let message = error.get("message").and_then(Json::as_str).unwrap_or("an error");
            let reason = match code {
                "UNAUTHENTICATED" => UnreachableReason::Unauthorised,
                "FORBIDDEN" | "RATE_LIMITED" => UnreachableReason::Refused,
                "TIMEOUT" => UnreachableReason::Timeout,
                // A server that has no partner fields at all does not speak the protocol.
                "GRAPHQL_VALIDATION_FAILED" => UnreachableReason::Incompatible,
                _ => UnreachableReason::InvalidAnswer,
            };
            return Err(Failure::new(reason, format!("it answered {code}: {message}")));
        }
        let data = body.get_mut("data").map(Json::take).ok_or_else(|| invalid("an answer without data"))?;
        let protocol = data.pointer("/partnerInfo/protocol").and_then(Json::as_str).unwrap_or("");
        if major(protocol) != major(PROTOCOL) {
            return Err(Failure::new(
                UnreachableReason::Incompatible,
                format!("it speaks `{protocol}`, this instance `{PROTOCOL}`"),
            ));
        }
        let owns = data
            .pointer("/partnerInfo/organisations")
            .and_then(Json::as_array)
            .is_some_and(|orgs| orgs.iter().any(|o| o.as_str() == Some(&self.organisation)));
        if !owns {
            return Err(invalid(format!("it does not hold the organisation {}", self.organisation)));
        }
        Ok(data)
    }

    /// Refuses at once while the partner is marked down; lets one call through when the time is up.
    fn may_call(&self) -> Result<(), Failure> {
        let mut breaker = self.breaker.lock().unwrap_or_else(PoisonError::into_inner);
        match breaker.down_until {
            Some(until) if Instant::now() < until => Err(Failure::new(
                UnreachableReason::Unavailable,
                format!("marked down after {} failures in a row; not called again yet", breaker.failures),
            )),
            Some(_) => {
                // One probe at a time: the others still fail fast until it answers.
                breaker.down_until = Some(Instant::now() + DOWN_FOR);
                Ok(())
            }
            None => Ok(()),
        }
    }

    fn record<T>(&self, outcome: &Result<T, Failure>) {
        let mut breaker = self.breaker.lock().unwrap_or_else(PoisonError::into_inner);
        match outcome {
            Ok(_) => *breaker = Breaker::default(),
            Err(f) if matches!(f.reason, UnreachableReason::Timeout | UnreachableReason::Unavailable) => {
                breaker.failures += 1;
                if breaker.failures >= FAILURES_TO_MARK_DOWN {
                    breaker.down_until = Some(Instant::now() + DOWN_FOR);
                }
            }
            // The partner answered: it is up, whatever it said.
            Err(_) => breaker.failures = 0,
        }
    }
}

fn invalid(message: impl Into<String>) -> Failure {
    Failure::new(UnreachableReason::InvalidAnswer, message)
}

fn direction_name(direction: TraceDirection) -> &'static str {
    match direction {
        TraceDirection::Downstream => "DOWNSTREAM",
        TraceDirection::Upstream => "UPSTREAM",
        TraceDirection::Both => "BOTH",
    }
}

/// The major version of a protocol word such as `pvgraph-partner/1`.
fn major(protocol: &str) -> Option<&str> {
    let (name, version) = protocol.split_once('/')?;
    (name == "pvgraph-partner").then(|| version.split('.').next().unwrap_or(version))
}

fn seconds(duration: Duration) -> String {
    format!("{:.1} s", duration.as_secs_f64())
}

/// The innermost cause of a transport error, which says what went wrong (e.g. connection refused).
fn root(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_same_major_version_of_the_protocol_is_read() {
        assert_eq!(major(PROTOCOL), Some("1"));
        assert_eq!(major("pvgraph-partner/1.3"), Some("1"));
        assert_ne!(major("pvgraph-partner/2"), major(PROTOCOL));
        assert_eq!(major("something-else/1"), None);
    }
}
