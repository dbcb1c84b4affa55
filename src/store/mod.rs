//! The one port to persistence. `GraphStore` speaks the domain; each backend
//! implements it natively. The rules a change must follow are applied once, in
//! `apply`, over a backend's transaction, so the backends cannot drift apart.

mod access;
mod apply;
mod location;
pub mod neo4j;
pub mod sqlite;
pub mod traverse;
pub mod visible;

use foldhash::HashSet;
use std::sync::Arc;

use async_trait::async_trait;

use crate::domain::{
    Actor, Applied, Audience, Change, Edge, Error, Node, NodeId, NodeKind, RelationshipKind, Result, timestamp,
};

pub use access::{ApiToken, AuditEntry, AuditQuery};
pub use apply::{ChangeSet, Failed, ForeignEnd, Writer, apply_changes};
pub use location::StoreLocation;
pub use neo4j::Neo4jOptions;
pub use traverse::{PathRequest, Paths, Trace, TraceDirection, TraceRequest};
pub use visible::Visible;

/// A full-text search.
#[derive(Clone, Debug)]
pub struct SearchRequest {
    pub text: String,
    /// Only nodes of these kinds (all, when empty).
    pub kinds: Vec<NodeKind>,
    pub first: usize,
    /// Only nodes this audience may see.
    pub audience: Audience,
}

/// A node that matched a search, best first.
#[derive(Clone, Debug)]
pub struct SearchHit {
    pub node: Node,
    /// Higher is more relevant.
    pub score: f64,
    /// The matching words in context, with matches between `[` and `]`.
    pub snippet: String,
}

/// Which way to follow relationships from a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Relationships the node points out along (the node is `from`).
    Out,
    /// Relationships that point at the node (the node is `to`).
    In,
}

/// The field a list is ordered by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderField {
    Id,
    Title,
    CreatedAt,
    UpdatedAt,
}

impl OrderField {
    /// The value of the field for a node, as the store compares it.
    pub fn key(self, node: &Node) -> String {
        match self {
            OrderField::Id => node.id.to_string(),
            OrderField::Title => node.title.clone(),
            OrderField::CreatedAt => timestamp(node.created_at),
            OrderField::UpdatedAt => timestamp(node.updated_at),
        }
    }
}

/// A test on one of a kind's own fields.
#[derive(Clone, Debug, PartialEq)]
pub enum FieldTest {
    /// The field holds one of these words.
    OneOf(&'static str, Vec<String>),
    /// The field is a number at least this large.
    AtLeast(&'static str, i64),
}

/// The words of a list, each once, in the order first given (a filter's
/// `IN` list may repeat a word; a read per word must not).
pub(crate) fn distinct_words(words: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(words.len());
    for word in words {
        if !out.contains(word) {
            out.push(word.clone());
        }
    }
    out
}

/// Which nodes of a kind a list or a count takes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodeFilter {
    /// Owned by one of these organisations (all, when empty).
    pub organisations: Vec<String>,
    /// The title contains this text, ignoring ASCII case.
    pub title_contains: Option<String>,
    /// Carries at least one of these tags (any, when empty).
    pub tags: Vec<String>,
    /// Has (true) or lacks (false) a relationship of this kind that way.
    pub related: Vec<(RelationshipKind, Direction, bool)>,
    pub fields: Vec<FieldTest>,
    /// Only nodes this audience may see (every node, by default).
    pub audience: Audience,
}

/// A position in an ordered list: the order field's value and the id.
#[derive(Clone, Debug, PartialEq)]
pub struct Position {
    pub key: String,
    pub id: String,
}

/// One page of one kind of node, by keyset pagination.
#[derive(Clone, Debug)]
pub struct ListQuery {
    pub kind: NodeKind,
    pub filter: NodeFilter,
    pub order: OrderField,
    pub descending: bool,
    /// Only nodes after this position…
    pub after: Option<Position>,
    /// …and before this one.
    pub before: Option<Position>,
    /// How many nodes to return at most.
    pub limit: usize,
    /// Take the last `limit` nodes of the window rather than the first.
    pub from_end: bool,
}

/// A node read together with its relationships (see `GraphStore::node_with_edges`).
#[derive(Clone, Debug, Default)]
pub struct NodeWithEdges {
    /// The node, if there is one the caller may see.
    pub node: Option<Node>,
    /// For each direction asked, in the order asked: the relationships as `visible_edges_and_ends`
    /// gives them, and the nodes at their far ends.
    pub edges: Vec<(Direction, Vec<Edge>, Vec<Node>)>,
}

/// What a store keeps in memory to answer reads, and how it served since the store opened
/// (`GraphStore::cache_figures`, for `/metrics`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheFigures {
    /// Entries held now.
    pub entries: u64,
    /// The most entries it holds.
    pub room: u64,
    /// Entries looked up and found held.
    pub hits: u64,
    /// Entries looked up and not held, so read from the store.
    pub misses: u64,
    /// Times all that was held was dropped because the graph changed.
    pub dropped_changed: u64,
    /// Times all that was held was dropped to make room.
    pub dropped_full: u64,
}

/// The persistence port. Every method is one round trip's worth of work.
#[async_trait]
pub trait GraphStore: Send + Sync + 'static {
    /// A short name of the backend, e.g. `sqlite`.
    fn backend(&self) -> &'static str;

    /// Whether `apply_as` honours `Actor::confirmation`, writing nothing before it passes. A
    /// store that says no is handed only change sets whose caller is already confirmed; a
    /// wrapper says what the store it wraps says.
    fn confirms_callers(&self) -> bool {
        false
    }

    /// What the store keeps in memory to answer reads, where it keeps anything (the embedded
    /// store's cache of walks); a wrapper says what the store it wraps says.
    fn cache_figures(&self) -> Option<CacheFigures> {
        None
    }

    /// Succeeds when the store answers.
    async fn ping(&self) -> Result<()>;

    /// The nodes with these ids, in any order; unknown ids are left out.
    async fn nodes(&self, ids: &[NodeId]) -> Result<Vec<Node>>;

    /// A window of nodes in the query's order (always first to last).
    async fn list(&self, query: &ListQuery) -> Result<Vec<Node>>;

    /// How many nodes of a kind pass a filter.
    async fn count(&self, kind: NodeKind, filter: &NodeFilter) -> Result<u64>;

    /// Every relationship leaving (`Out`) or reaching (`In`) any of these nodes.
    async fn edges(&self, ids: &[NodeId], direction: Direction) -> Result<Vec<Edge>>;

    /// Like `edges`, keeping only relationships whose two ends are nodes here that the audience
    /// may see (so none with a foreign end). Backends answer in the same one query; this default
    /// asks for the ends separately.
    async fn visible_edges(&self, ids: &[NodeId], direction: Direction, audience: &Audience) -> Result<Vec<Edge>> {
        let mut edges = self.edges(ids, direction).await?;
        if edges.is_empty() {
            return Ok(edges);
        }
        let mut ends: Vec<NodeId> = edges.iter().flat_map(|e| [e.from.clone(), e.to.clone()]).collect();
        ends.sort();
        ends.dedup();
        let seen: HashSet<NodeId> =
            self.nodes(&ends).await?.into_iter().filter(|n| audience.sees_node(n)).map(|n| n.id).collect();
        edges.retain(|e| seen.contains(&e.from) && seen.contains(&e.to));
        Ok(edges)
    }

    /// Like `edges`, with the nodes at the relationships' far ends when the backend reads them in
    /// the same query (all, some or none: callers load the others). This default reads none.
    async fn edges_and_ends(&self, ids: &[NodeId], direction: Direction) -> Result<(Vec<Edge>, Vec<Node>)> {
        Ok((self.edges(ids, direction).await?, Vec::new()))
    }

    /// Like `visible_edges`, with far ends as `edges_and_ends` gives them. This default reads none.
    async fn visible_edges_and_ends(
        &self,
        ids: &[NodeId],
        direction: Direction,
        audience: &Audience,
    ) -> Result<(Vec<Edge>, Vec<Node>)> {
        Ok((self.visible_edges(ids, direction, audience).await?, Vec::new()))
    }

    /// One node and its relationships the given ways, with their far ends, as `nodes` and
    /// `edges_and_ends` give them to a caller's view, when the backend reads them together for
    /// less than the two calls; `None` where it does not (the caller then makes the two calls).
    /// Only a caller's view (`Visible`) reads them; this default does not.
    async fn node_with_edges(&self, _id: &NodeId, _directions: &[Direction]) -> Result<Option<NodeWithEdges>> {
        Ok(None)
    }

    /// What `node_with_edges` reads for an audience: the node if it may see it, and the
    /// relationships the ways asked as `visible_edges_and_ends` gives them. This default reads
    /// nothing (`None`).
    async fn visible_node_with_edges(
        &self,
        _id: &NodeId,
        _directions: &[Direction],
        _audience: &Audience,
    ) -> Result<Option<NodeWithEdges>> {
        Ok(None)
    }

    /// The relationships this instance holds between these nodes and nodes it does not hold
    /// (partners' nodes, by id), that way; `ids` may name either end.
    async fn foreign_edges(&self, _ids: &[NodeId], _direction: Direction) -> Result<Vec<Edge>> {
        Ok(Vec::new())
    }

    /// Applies a change set in one transaction: all of it, or none of it. The server's own
    /// changes (seeding, import, copy): no authorisation, no audit entry.
    async fn apply(&self, changes: Vec<Change>) -> Result<Vec<Applied>, Failed> {
        self.apply_as(changes, None).await
    }

    /// Applies a change set in one transaction; with an actor, only when the actor may make every
    /// change (see `store::apply`), and with an audit entry written in the same transaction.
    async fn apply_as(&self, changes: Vec<Change>, actor: Option<&Actor>) -> Result<Vec<Applied>, Failed>;

    /// Stores a new API token (its hash, never the token).
    async fn save_token(&self, token: &ApiToken) -> Result<()>;

    /// Revokes a token; false when no token not yet revoked has this id.
    async fn revoke_token(&self, id: &str) -> Result<bool>;

    /// Every API token, revoked ones included, oldest first.
    async fn tokens(&self) -> Result<Vec<ApiToken>>;

    /// The token with this hash, revoked or not.
    async fn token_by_hash(&self, hash: &str) -> Result<Option<ApiToken>>;

    /// `token_by_hash` read at once on the asking task, when the store can without waiting for
    /// anything (an embedded store with a connection idle); `None` when it cannot, and the
    /// caller asks `token_by_hash` as usual.
    async fn token_by_hash_at_once(&self, _hash: &str) -> Option<Result<Option<ApiToken>>> {
        None
    }

    /// A page of an organisation's audit trail, newest first.
    async fn audit_log(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>>;

    /// How many audit entries an organisation has.
    async fn audit_count(&self, organisation: &str) -> Result<u64>;

    /// The organisations that have an audit trail here, in order.
    async fn audit_organisations(&self) -> Result<Vec<String>>;

    /// Writes API tokens and audit entries as another store holds them (a copy), in one
    /// transaction. A token or an entry whose id is here already is overwritten, so that a copy
    /// that stopped half-way can run again.
    async fn restore_access(&self, tokens: &[ApiToken], entries: &[AuditEntry]) -> Result<()>;

    /// Applies a change set that arrives in batches, in one transaction: all of
    /// it, or none of it. What each change did is not kept, so a change set of
    /// millions need not fit in memory; the answer is how many were applied.
    /// This default gathers the batches and applies them as one change set.
    async fn import(&self, mut batches: ChangeBatches) -> Result<usize, Failed> {
        let mut changes = Vec::new();
        while let Some(batch) = next_batch(batches.recv().await, changes.len())? {
            changes.extend(batch);
        }
        self.apply(changes).await.map(|applied| applied.len())
    }

    /// Whether the store holds no node at all.
    async fn is_empty(&self) -> Result<bool>;

    /// Every node and relationship (those with a foreign end too), for export and copying.
    async fn dump(&self) -> Result<(Vec<Node>, Vec<Edge>)>;

    /// The subgraph reachable from one node.
    async fn trace(&self, request: &TraceRequest) -> Result<Trace>;

    /// Simple paths from one node to another, shortest first.
    async fn paths(&self, request: &PathRequest) -> Result<Paths>;

    /// Nodes ranked by how well their words match the text.
    async fn search(&self, request: &SearchRequest) -> Result<Vec<SearchHit>>;

    /// INFLUENCED relationships whose two ends belong to different organisations (a foreign end
    /// always does), oldest first,
    /// optionally only from learnings of one organisation or into nodes of another.
    async fn influences_across(&self, from: Option<&str>, to: Option<&str>, limit: usize) -> Result<Vec<Edge>>;

    /// Each embedded learning (of one organisation, or all) with each experiment that produced it.
    async fn embedding_pairs(&self, organisation: Option<&str>) -> Result<Vec<(Node, Node)>>;
}

pub type Store = Arc<dyn GraphStore>;

/// A long change set arriving in batches, for [`GraphStore::import`]. An `Err`
/// ends it and fails the import with that error.
pub type ChangeBatches = tokio::sync::mpsc::Receiver<Result<Vec<Change>>>;

/// Takes the next batch of an import; a batch that is an error fails it at `index`.
pub(crate) fn next_batch(batch: Option<Result<Vec<Change>>>, index: usize) -> Result<Option<Vec<Change>>, Failed> {
    batch.transpose().map_err(|error| Failed { index, error })
}

/// Opens the store a location names, creating and migrating it when needed.
/// A Neo4j server is reached with the options of the `PVGRAPH_NEO4J_*`
/// environment variables; see [`open_with`] to give them.
pub async fn open(location: &StoreLocation) -> Result<Store> {
    open_with(location, &Neo4jOptions::from_env()).await
}

/// Opens the store a location names, reaching a Neo4j server with `neo4j`.
pub async fn open_with(location: &StoreLocation, neo4j: &Neo4jOptions) -> Result<Store> {
    match location {
        StoreLocation::Sqlite(path) => open_sqlite(path, sqlite::WALK_CACHE_ENTRIES).await,
        StoreLocation::Neo4j(uri) => neo4j::open(uri, neo4j).await,
    }
}

/// Opens the embedded store at `path`, keeping at most `walk_entries` nodes and relationship
/// lists that walks read in memory (`SqliteStore::open_keeping`).
pub async fn open_sqlite(path: &std::path::Path, walk_entries: usize) -> Result<Store> {
    let path = path.to_owned();
    let store = tokio::task::spawn_blocking(move || sqlite::SqliteStore::open_keeping(&path, walk_entries))
        .await
        .map_err(Error::internal)??;
    Ok(Arc::new(store))
}
