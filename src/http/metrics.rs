//! `/metrics` in the Prometheus text format: GraphQL requests, errors and
//! latency per operation name and type, the latency of every store call per
//! method, the open subscriptions, and what the embedded store's cache of walks
//! holds and how it serves.
//!
//! The `prometheus` crate, with a registry per server rather than a process-wide
//! recorder (as the `metrics` facade has): two servers in one process (the
//! tests) then count apart, and nothing is global.

use std::collections::HashSet;
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use async_trait::async_trait;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use prometheus::{Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry, TextEncoder};

use crate::domain::{Actor, Applied, Audience, Change, Edge, Node, NodeId, NodeKind, Result};
use crate::graphql::Operation;
use crate::store::{
    ApiToken, AuditEntry, AuditQuery, CacheFigures, Direction, Failed, GraphStore, ListQuery, NodeFilter,
    NodeWithEdges, PathRequest, Paths, SearchHit, SearchRequest, Store, Trace, TraceRequest,
};

use super::AppState;

/// Operation names become label values; past this many distinct ones, the rest count as `other`,
/// so that clients cannot grow the metrics without bound.
const MOST_OPERATION_NAMES: usize = 200;

/// Every metric one server keeps.
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    errors: IntCounterVec,
    latency: HistogramVec,
    store_latency: HistogramVec,
    store_errors: IntCounterVec,
    subscriptions: IntGauge,
    names: Mutex<HashSet<String>>,
    /// Registered when the store served has a cache (`GraphStore::cache_figures`).
    cache: OnceLock<CacheMetrics>,
}

/// The store's cache, as its own counts say at each scrape.
struct CacheMetrics {
    entries: IntGauge,
    room: IntGauge,
    lookups: IntCounterVec,
    drops: IntCounterVec,
    /// One scrape at a time moves the counters up to the store's counts.
    mirroring: Mutex<()>,
}

impl CacheMetrics {
    fn new(registry: &Registry) -> CacheMetrics {
        let gauge = |name: &str, help: &str| IntGauge::new(name, help).expect("a valid metric");
        let entries = gauge("pvgraph_walk_cache_entries", "Nodes and relationship lists the store holds in memory");
        let room =
            gauge("pvgraph_walk_cache_room", "The most entries the store holds in memory (--walk-cache-entries)");
        let lookups = IntCounterVec::new(
            Opts::new("pvgraph_walk_cache_lookups_total", "Entries looked up in memory, by whether they were held"),
            &["outcome"],
        )
        .expect("a valid metric");
        let drops = IntCounterVec::new(
            Opts::new(
                "pvgraph_walk_cache_drops_total",
                "Times all the entries held were dropped: the graph changed, or there was no room",
            ),
            &["reason"],
        )
        .expect("a valid metric");
        for metric in [
            Box::new(entries.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(room.clone()),
            Box::new(lookups.clone()),
            Box::new(drops.clone()),
        ] {
            registry.register(metric).expect("each metric registers once");
        }
        CacheMetrics { entries, room, lookups, drops, mirroring: Mutex::new(()) }
    }

    fn set(&self, figures: CacheFigures) {
        let _alone = self.mirroring.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        self.entries.set(i64::try_from(figures.entries).unwrap_or(i64::MAX));
        self.room.set(i64::try_from(figures.room).unwrap_or(i64::MAX));
        let counts = [
            (&self.lookups, "hit", figures.hits),
            (&self.lookups, "miss", figures.misses),
            (&self.drops, "changed", figures.dropped_changed),
            (&self.drops, "full", figures.dropped_full),
        ];
        for (counters, label, total) in counts {
            let counter = counters.with_label_values(&[label]);
            counter.inc_by(total.saturating_sub(counter.get()));
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let labels = &["operation", "type"];
        let requests = IntCounterVec::new(
            Opts::new("pvgraph_graphql_requests_total", "GraphQL requests, per operation name and type"),
            labels,
        )
        .expect("a valid metric");
        let errors = IntCounterVec::new(
            Opts::new("pvgraph_graphql_errors_total", "GraphQL requests answered with errors, per operation"),
            labels,
        )
        .expect("a valid metric");
        let latency = HistogramVec::new(
            HistogramOpts::new("pvgraph_graphql_request_duration_seconds", "Time to answer a GraphQL request"),
            labels,
        )
        .expect("a valid metric");
        let store_latency = HistogramVec::new(
            HistogramOpts::new("pvgraph_store_call_duration_seconds", "Time of one store call, per method")
                .buckets(vec![0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0]),
            &["method"],
        )
        .expect("a valid metric");
        let store_errors = IntCounterVec::new(
            Opts::new("pvgraph_store_errors_total", "Store calls that failed, per method"),
            &["method"],
        )
        .expect("a valid metric");
        let subscriptions =
            IntGauge::new("pvgraph_subscriptions_open", "Open graphChanged subscriptions").expect("a valid metric");
        for metric in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(errors.clone()),
            Box::new(latency.clone()),
            Box::new(store_latency.clone()),
            Box::new(store_errors.clone()),
            Box::new(subscriptions.clone()),
        ] {
            registry.register(metric).expect("each metric registers once");
        }
        Metrics {
            registry,
            requests,
            errors,
            latency,
            store_latency,
            store_errors,
            subscriptions,
            names: Mutex::new(HashSet::new()),
            cache: OnceLock::new(),
        }
    }

    /// The store, with every call timed, and its cache's figures in the scrapes where it has one.
    pub fn timed(self: &Arc<Self>, store: Store) -> Store {
        if store.cache_figures().is_some() {
            self.cache.get_or_init(|| CacheMetrics::new(&self.registry));
        }
        Arc::new(TimedStore { inner: store, metrics: self.clone() })
    }

    /// The text a scrape returns, with the subscriptions gauge set to `open` and the cache's
    /// metrics to its `cache` figures.
    pub fn render(&self, open_subscriptions: usize, cache: Option<CacheFigures>) -> String {
        self.subscriptions.set(i64::try_from(open_subscriptions).unwrap_or(i64::MAX));
        if let (Some(metrics), Some(figures)) = (self.cache.get(), cache) {
            metrics.set(figures);
        }
        let mut text = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut text).expect("the text encoder writes to memory");
        String::from_utf8(text).expect("the text format is UTF-8")
    }

    fn label(&self, name: Option<&str>) -> String {
        let Some(name) = name.filter(|n| !n.is_empty()) else {
            return "anonymous".into();
        };
        let mut names = self.names.lock().expect("the names lock");
        if names.contains(name) || names.len() < MOST_OPERATION_NAMES && names.insert(name.to_owned()) {
            name.to_owned()
        } else {
            "other".into()
        }
    }

    /// Counts and times one GraphQL request by its operation.
    pub fn record_request(&self, operation: &Operation, seconds: f64, failed: bool) {
        let name = self.label(operation.name.as_deref());
        let labels = [name.as_str(), operation.kind];
        self.requests.with_label_values(&labels).inc();
        self.latency.with_label_values(&labels).observe(seconds);
        if failed {
            self.errors.with_label_values(&labels).inc();
        }
    }

    async fn time<T, E>(
        &self,
        method: &str,
        call: impl Future<Output = std::result::Result<T, E>>,
    ) -> std::result::Result<T, E> {
        let started = Instant::now();
        let result = call.await;
        self.observe(method, started, result.is_err());
        result
    }

    /// Records a store call that began at `started` and has just ended.
    fn observe(&self, method: &str, started: Instant, failed: bool) {
        self.store_latency.with_label_values(&[method]).observe(started.elapsed().as_secs_f64());
        if failed {
            self.store_errors.with_label_values(&[method]).inc();
        }
    }
}

/// `GET /metrics`.
pub async fn scrape(State(state): State<AppState>) -> impl IntoResponse {
    let text = state.metrics.render(state.feed.subscribers(), state.store.cache_figures());
    (StatusCode::OK, [(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)], text)
}

/// A store whose every call is timed, by method.
struct TimedStore {
    inner: Store,
    metrics: Arc<Metrics>,
}

#[async_trait]
impl GraphStore for TimedStore {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }

    fn confirms_callers(&self) -> bool {
        self.inner.confirms_callers()
    }

    fn cache_figures(&self) -> Option<CacheFigures> {
        self.inner.cache_figures()
    }

    async fn ping(&self) -> Result<()> {
        self.metrics.time("ping", self.inner.ping()).await
    }

    async fn nodes(&self, ids: &[NodeId]) -> Result<Vec<Node>> {
        self.metrics.time("nodes", self.inner.nodes(ids)).await
    }

    async fn list(&self, query: &ListQuery) -> Result<Vec<Node>> {
        self.metrics.time("list", self.inner.list(query)).await
    }

    async fn count(&self, kind: NodeKind, filter: &NodeFilter) -> Result<u64> {
        self.metrics.time("count", self.inner.count(kind, filter)).await
    }

    async fn edges(&self, ids: &[NodeId], direction: Direction) -> Result<Vec<Edge>> {
        self.metrics.time("edges", self.inner.edges(ids, direction)).await
    }

    async fn foreign_edges(&self, ids: &[NodeId], direction: Direction) -> Result<Vec<Edge>> {
        self.metrics.time("foreign_edges", self.inner.foreign_edges(ids, direction)).await
    }

    async fn visible_edges(&self, ids: &[NodeId], direction: Direction, audience: &Audience) -> Result<Vec<Edge>> {
        self.metrics.time("edges", self.inner.visible_edges(ids, direction, audience)).await
    }

    async fn edges_and_ends(&self, ids: &[NodeId], direction: Direction) -> Result<(Vec<Edge>, Vec<Node>)> {
        self.metrics.time("edges", self.inner.edges_and_ends(ids, direction)).await
    }

    async fn visible_edges_and_ends(
        &self,
        ids: &[NodeId],
        direction: Direction,
        audience: &Audience,
    ) -> Result<(Vec<Edge>, Vec<Node>)> {
        self.metrics.time("edges", self.inner.visible_edges_and_ends(ids, direction, audience)).await
    }

    async fn node_with_edges(&self, id: &NodeId, directions: &[Direction]) -> Result<Option<NodeWithEdges>> {
        self.metrics.time("nodes", self.inner.node_with_edges(id, directions)).await
    }

    async fn visible_node_with_edges(
        &self,
        id: &NodeId,
        directions: &[Direction],
        audience: &Audience,
    ) -> Result<Option<NodeWithEdges>> {
        self.metrics.time("nodes", self.inner.visible_node_with_edges(id, directions, audience)).await
    }

    async fn apply_as(&self, changes: Vec<Change>, actor: Option<&Actor>) -> Result<Vec<Applied>, Failed> {
        self.metrics.time("apply", self.inner.apply_as(changes, actor)).await
    }

    async fn save_token(&self, token: &ApiToken) -> Result<()> {
        self.metrics.time("save_token", self.inner.save_token(token)).await
    }

    async fn revoke_token(&self, id: &str) -> Result<bool> {
        self.metrics.time("revoke_token", self.inner.revoke_token(id)).await
    }

    async fn tokens(&self) -> Result<Vec<ApiToken>> {
        self.metrics.time("tokens", self.inner.tokens()).await
    }

    async fn token_by_hash(&self, hash: &str) -> Result<Option<ApiToken>> {
        self.metrics.time("token_by_hash", self.inner.token_by_hash(hash)).await
    }

    /// Timed as `token_by_hash` when the store answers at once: it is the same lookup.
    async fn token_by_hash_at_once(&self, hash: &str) -> Option<Result<Option<ApiToken>>> {
        let started = Instant::now();
        let answer = self.inner.token_by_hash_at_once(hash).await?;
        self.metrics.observe("token_by_hash", started, answer.is_err());
        Some(answer)
    }

    async fn audit_log(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>> {
        self.metrics.time("audit_log", self.inner.audit_log(query)).await
    }

    async fn audit_organisations(&self) -> Result<Vec<String>> {
        self.metrics.time("audit_organisations", self.inner.audit_organisations()).await
    }

    async fn restore_access(&self, tokens: &[ApiToken], entries: &[AuditEntry]) -> Result<()> {
        self.metrics.time("restore_access", self.inner.restore_access(tokens, entries)).await
    }

    async fn audit_count(&self, organisation: &str) -> Result<u64> {
        self.metrics.time("audit_count", self.inner.audit_count(organisation)).await
    }

    async fn is_empty(&self) -> Result<bool> {
        self.metrics.time("is_empty", self.inner.is_empty()).await
    }

    async fn dump(&self) -> Result<(Vec<Node>, Vec<Edge>)> {
        self.metrics.time("dump", self.inner.dump()).await
    }

    async fn trace(&self, request: &TraceRequest) -> Result<Trace> {
        self.metrics.time("trace", self.inner.trace(request)).await
    }

    async fn paths(&self, request: &PathRequest) -> Result<Paths> {
        self.metrics.time("paths", self.inner.paths(request)).await
    }

    async fn search(&self, request: &SearchRequest) -> Result<Vec<SearchHit>> {
        self.metrics.time("search", self.inner.search(request)).await
    }

    async fn influences_across(&self, from: Option<&str>, to: Option<&str>, limit: usize) -> Result<Vec<Edge>> {
        self.metrics.time("influences_across", self.inner.influences_across(from, to, limit)).await
    }

    async fn embedding_pairs(&self, organisation: Option<&str>) -> Result<Vec<(Node, Node)>> {
        self.metrics.time("embedding_pairs", self.inner.embedding_pairs(organisation)).await
    }
}
