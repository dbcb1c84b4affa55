//! A store that counts its calls: `Counting` is instrumentation, not a mock.
//! It forwards every call to the real SQLite store and only notes which method
//! was called with how many ids, so tests can show how requests batch.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use pvgraph::domain::{Actor, Applied, Audience, Caller, Change, Edge, Node, NodeId, NodeKind, Result};
use pvgraph::store::{
    self, ApiToken, AuditEntry, AuditQuery, Direction, Failed, GraphStore, ListQuery, NodeFilter, PathRequest, Paths,
    SearchHit, SearchRequest, Store, StoreLocation, Trace, TraceRequest,
};
use serde_json::Value;

use super::temp_dir;

/// One store call: the method and how many ids it was given (0 when it takes none).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    pub method: &'static str,
    pub ids: usize,
}

pub struct Counting {
    inner: Store,
    calls: Mutex<Vec<Call>>,
}

impl Counting {
    fn note(&self, method: &'static str, ids: usize) {
        self.calls.lock().unwrap().push(Call { method, ids });
    }
}

#[async_trait]
impl GraphStore for Counting {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }

    fn confirms_callers(&self) -> bool {
        self.inner.confirms_callers()
    }

    async fn ping(&self) -> Result<()> {
        self.note("ping", 0);
        self.inner.ping().await
    }

    async fn nodes(&self, ids: &[NodeId]) -> Result<Vec<Node>> {
        self.note("nodes", ids.len());
        self.inner.nodes(ids).await
    }

    async fn list(&self, query: &ListQuery) -> Result<Vec<Node>> {
        self.note("list", 0);
        self.inner.list(query).await
    }

    async fn count(&self, kind: NodeKind, filter: &NodeFilter) -> Result<u64> {
        self.note("count", 0);
        self.inner.count(kind, filter).await
    }

    async fn edges(&self, ids: &[NodeId], direction: Direction) -> Result<Vec<Edge>> {
        self.note("edges", ids.len());
        self.inner.edges(ids, direction).await
    }

    async fn visible_edges(&self, ids: &[NodeId], direction: Direction, audience: &Audience) -> Result<Vec<Edge>> {
        self.note("edges", ids.len());
        self.inner.visible_edges(ids, direction, audience).await
    }

    async fn apply_as(&self, changes: Vec<Change>, actor: Option<&Actor>) -> Result<Vec<Applied>, Failed> {
        self.note("apply", 0);
        self.inner.apply_as(changes, actor).await
    }

    async fn save_token(&self, token: &ApiToken) -> Result<()> {
        self.note("save_token", 0);
        self.inner.save_token(token).await
    }

    async fn revoke_token(&self, id: &str) -> Result<bool> {
        self.note("revoke_token", 0);
        self.inner.revoke_token(id).await
    }

    async fn tokens(&self) -> Result<Vec<ApiToken>> {
        self.note("tokens", 0);
        self.inner.tokens().await
    }

    async fn token_by_hash(&self, hash: &str) -> Result<Option<ApiToken>> {
        self.note("token_by_hash", 0);
        self.inner.token_by_hash(hash).await
    }

    async fn audit_log(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>> {
        self.note("audit_log", 0);
        self.inner.audit_log(query).await
    }

    async fn audit_count(&self, organisation: &str) -> Result<u64> {
        self.note("audit_count", 0);
        self.inner.audit_count(organisation).await
    }

    async fn audit_organisations(&self) -> Result<Vec<String>> {
        self.note("audit_organisations", 0);
        self.inner.audit_organisations().await
    }

    async fn restore_access(&self, tokens: &[ApiToken], entries: &[AuditEntry]) -> Result<()> {
        self.note("restore_access", 0);
        self.inner.restore_access(tokens, entries).await
    }

    async fn is_empty(&self) -> Result<bool> {
        self.note("is_empty", 0);
        self.inner.is_empty().await
    }

    async fn dump(&self) -> Result<(Vec<Node>, Vec<Edge>)> {
        self.note("dump", 0);
        self.inner.dump().await
    }

    async fn trace(&self, request: &TraceRequest) -> Result<Trace> {
        self.note("trace", 0);
        self.inner.trace(request).await
    }

    async fn paths(&self, request: &PathRequest) -> Result<Paths> {
        self.note("paths", 0);
        self.inner.paths(request).await
    }

    async fn search(&self, request: &SearchRequest) -> Result<Vec<SearchHit>> {
        self.note("search", 0);
        self.inner.search(request).await
    }

    async fn influences_across(&self, from: Option<&str>, to: Option<&str>, limit: usize) -> Result<Vec<Edge>> {
        self.note("influences_across", 0);
        self.inner.influences_across(from, to, limit).await
    }

    async fn embedding_pairs(&self, organisation: Option<&str>) -> Result<Vec<(Node, Node)>> {
        self.note("embedding_pairs", 0);
        self.inner.embedding_pairs(organisation).await
    }
}

/// The real schema over the seeded SQLite store, counted.
pub struct Harness {
    pub counting: Arc<Counting>,
    pub store: Store,
    pub schema: pvgraph::graphql::Api,
    _dir: tempfile::TempDir,
}

impl Harness {
    pub async fn seeded() -> Harness {
        let dir = temp_dir();
        let inner = store::open(&StoreLocation::Sqlite(dir.path().join("pvgraph.db"))).await.expect("the store opens");
        pvgraph::seed::load(&inner, pvgraph::seed::KING_COUNTY).await.expect("the seed loads");
        let counting = Arc::new(Counting { inner, calls: Mutex::new(Vec::new()) });
        let store: Store = counting.clone();
        let schema = pvgraph::graphql::api(store.clone(), pvgraph::graphql::ChangeFeed::default());
        Harness { counting, store, schema, _dir: dir }
    }

    /// Runs a query in-process and returns its data and the store calls it made.
    pub async fn run(&self, query: &str) -> (Value, Vec<Call>) {
        self.run_with(query, Value::Null).await
    }

    /// Like `run`, with variables.
    pub async fn run_with(&self, query: &str, variables: Value) -> (Value, Vec<Call>) {
        self.counting.calls.lock().unwrap().clear();
        let request = async_graphql::Request::new(query).variables(async_graphql::Variables::from_json(variables));
        // Run as the HTTP handler runs a request, so that its loaders batch a whole poll.
        let (response, _) = self.schema.run_as(request, &self.store, Caller::Anonymous, None, None).await;
        assert!(response.errors.is_empty(), "{query}: {:?}", response.errors);
        let calls = self.counting.calls.lock().unwrap().clone();
        (response.data.into_json().expect("data is JSON"), calls)
    }
}

pub fn count(calls: &[Call], method: &str) -> usize {
    calls.iter().filter(|c| c.method == method).count()
}

pub fn methods(calls: &[Call]) -> Vec<&'static str> {
    calls.iter().map(|c| c.method).collect()
}
