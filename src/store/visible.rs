//! One caller's view of a store: every read answers with only the nodes the
//! caller may see, and every relationship only when both its ends are
//! visible (a partner's node only through a view that asks the partner; a
//! dump keeps this instance's claims about partners' ids, which are its own
//! data). Lists, counts, search, traces and paths hand the audience to the
//! backend, which filters in its own query (so pages and counts stay right);
//! the rest is filtered here. Changes carry the caller, so that the backend
//! authorises them and writes the audit trail in the same transaction.

use foldhash::HashSet;

use async_trait::async_trait;

use super::{
    ApiToken, AuditEntry, AuditQuery, Direction, Failed, GraphStore, ListQuery, NodeFilter, NodeWithEdges, PathRequest,
    Paths, SearchHit, SearchRequest, Store, Trace, TraceRequest,
};
use crate::domain::{
    Actor, Applied, Audience, Caller, Change, Confirmation, Edge, Node, NodeId, NodeKind, Result, confirmed,
};

#[derive(Clone)]
pub struct Visible {
    inner: Store,
    caller: Caller,
    audience: Audience,
    /// When the caller is not yet confirmed (see `Authenticator::admit`): every write waits for
    /// it, and is refused unless it confirms this caller.
    confirmation: Option<Confirmation>,
}

impl Visible {
    pub fn new(inner: Store, caller: Caller) -> Visible {
        Visible { audience: caller.audience(), inner, caller, confirmation: None }
    }

    /// A view whose writes wait until the caller is confirmed.
    pub fn unconfirmed(mut self, confirmation: Option<Confirmation>) -> Visible {
        self.confirmation = confirmation;
        self
    }

    /// Waits for the caller's confirmation, if it has not come yet. Its refusal is the request's
    /// answer (the HTTP layer sends it in place of whatever the request computed); a caller
    /// confirmed as someone else makes the request run again as them.
    async fn confirmed(&self) -> Result<()> {
        confirmed(self.confirmation.as_ref(), &self.caller).await
    }

    pub fn caller(&self) -> &Caller {
        &self.caller
    }

    pub fn audience(&self) -> &Audience {
        &self.audience
    }
}

#[async_trait]
impl GraphStore for Visible {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }

    async fn ping(&self) -> Result<()> {
        self.inner.ping().await
    }

    async fn nodes(&self, ids: &[NodeId]) -> Result<Vec<Node>> {
        let mut nodes = self.inner.nodes(ids).await?;
        nodes.retain(|n| self.audience.sees_node(n));
        Ok(nodes)
    }

    async fn list(&self, query: &ListQuery) -> Result<Vec<Node>> {
        let mut query = query.clone();
        query.filter.audience = self.audience.clone();
        self.inner.list(&query).await
    }

    async fn count(&self, kind: NodeKind, filter: &NodeFilter) -> Result<u64> {
        let filter = NodeFilter { audience: self.audience.clone(), ..filter.clone() };
        self.inner.count(kind, &filter).await
    }

    async fn edges(&self, ids: &[NodeId], direction: Direction) -> Result<Vec<Edge>> {
        self.inner.visible_edges(ids, direction, &self.audience).await
    }

    async fn edges_and_ends(&self, ids: &[NodeId], direction: Direction) -> Result<(Vec<Edge>, Vec<Node>)> {
        self.inner.visible_edges_and_ends(ids, direction, &self.audience).await
    }

    async fn node_with_edges(&self, id: &NodeId, directions: &[Direction]) -> Result<Option<NodeWithEdges>> {
        let mut read = self.inner.visible_node_with_edges(id, directions, &self.audience).await?;
        if let Some(read) = &mut read {
            read.node = read.node.take().filter(|n| self.audience.sees_node(n));
        }
        Ok(read)
    }

    async fn apply_as(&self, changes: Vec<Change>, actor: Option<&Actor>) -> Result<Vec<Applied>, Failed> {
        // The caller is this view's, whatever the actor says; only the operation's name and the
        // partners are taken.
        let operation = actor.map_or_else(|| "change".to_owned(), |a| a.operation.clone());
        let partners = actor.map(|a| a.partners.clone()).unwrap_or_default();
        // A store that confirms callers itself waits only before its first write, after what it
        // reads first; any other is handed the change set once the caller is confirmed.
        let confirmation = match self.inner.confirms_callers() {
            true => self.confirmation.clone(),
            false => {
                self.confirmed().await.map_err(|error| Failed { index: 0, error })?;
                None
            }
        };
        let actor = Actor { caller: self.caller.clone(), operation, partners, confirmation };
        self.inner.apply_as(changes, Some(&actor)).await
    }

    async fn is_empty(&self) -> Result<bool> {
        self.inner.is_empty().await
    }

    async fn dump(&self) -> Result<(Vec<Node>, Vec<Edge>)> {
        let (mut nodes, mut edges) = self.inner.dump().await?;
        // The dump holds every node, so an end not among them is a foreign id, which only its owner hides.
        let held: HashSet<NodeId> = nodes.iter().map(|n| n.id.clone()).collect();
        nodes.retain(|n| self.audience.sees_node(n));
        let seen: HashSet<&NodeId> = nodes.iter().map(|n| &n.id).collect();
        edges.retain(|e| [&e.from, &e.to].iter().all(|end| seen.contains(end) || !held.contains(end)));
        Ok((nodes, edges))
    }

    async fn trace(&self, request: &TraceRequest) -> Result<Trace> {
        let request = TraceRequest { audience: self.audience.clone(), ..request.clone() };
        self.inner.trace(&request).await
    }

    async fn paths(&self, request: &PathRequest) -> Result<Paths> {
        let request = PathRequest { audience: self.audience.clone(), ..request.clone() };
        self.inner.paths(&request).await
    }

    async fn search(&self, request: &SearchRequest) -> Result<Vec<SearchHit>> {
        let request = SearchRequest { audience: self.audience.clone(), ..request.clone() };
        self.inner.search(&request).await
    }

    async fn influences_across(&self, from: Option<&str>, to: Option<&str>, limit: usize) -> Result<Vec<Edge>> {
        if self.audience == Audience::Everything {
            return self.inner.influences_across(from, to, limit).await;
        }
        // Influences across organisations are few; all are read so that hidden ones do not shorten the page.
        let mut edges = self.inner.influences_across(from, to, i64::MAX as usize).await?;
        // An end is kept when this caller may see it: a partner's node too, when the view
        // reaches partners and the partner shares it.
        let mut ends: Vec<NodeId> = edges.iter().flat_map(|e| [e.from.clone(), e.to.clone()]).collect();
        ends.sort();
        ends.dedup();
        let seen: HashSet<NodeId> = self.nodes(&ends).await?.into_iter().map(|n| n.id).collect();
        edges.retain(|e| seen.contains(&e.from) && seen.contains(&e.to));
        edges.truncate(limit);
        Ok(edges)
    }

    async fn embedding_pairs(&self, organisation: Option<&str>) -> Result<Vec<(Node, Node)>> {
        let mut pairs = self.inner.embedding_pairs(organisation).await?;
        pairs.retain(|(e, l)| self.audience.sees_node(e) && self.audience.sees_node(l));
        Ok(pairs)
    }

    async fn save_token(&self, token: &ApiToken) -> Result<()> {
        self.confirmed().await?;
        self.inner.save_token(token).await
    }

    async fn revoke_token(&self, id: &str) -> Result<bool> {
        self.confirmed().await?;
        self.inner.revoke_token(id).await
    }

    async fn tokens(&self) -> Result<Vec<ApiToken>> {
        self.inner.tokens().await
    }

    async fn token_by_hash(&self, hash: &str) -> Result<Option<ApiToken>> {
        self.inner.token_by_hash(hash).await
    }

    async fn token_by_hash_at_once(&self, hash: &str) -> Option<Result<Option<ApiToken>>> {
        self.inner.token_by_hash_at_once(hash).await
    }

    async fn audit_log(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>> {
        self.inner.audit_log(query).await
    }

    async fn audit_organisations(&self) -> Result<Vec<String>> {
        self.inner.audit_organisations().await
    }

    async fn restore_access(&self, tokens: &[ApiToken], entries: &[AuditEntry]) -> Result<()> {
        self.confirmed().await?;
        self.inner.restore_access(tokens, entries).await
    }

    async fn audit_count(&self, organisation: &str) -> Result<u64> {
        self.inner.audit_count(organisation).await
    }
}
