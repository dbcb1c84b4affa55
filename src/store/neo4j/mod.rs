//! Neo4j 5.x over Bolt (neo4rs), the backend for graphs that outgrow one machine.
//!
//! # The driver
//!
//! `neo4rs` is pinned exactly to `=0.9.0-rc.11` (see Cargo.toml): 0.9 is still a
//! release candidate and its API moves between RCs. 0.8.0 negotiates only Bolt
//! 4.0/4.1, which Neo4j 5 marks as removable, and has no connection timeout; the
//! 0.9 RCs negotiate Bolt 4.4 (which every Neo4j 5 accepts) and bound both the
//! connect and every wait for a reply, so a server that is down or gone fails a
//! call fast with [`Error::Unavailable`] rather than hanging it. rc.11 is the
//! newest RC and builds here.
//!
//! # The graph model
//!
//! * Every node is `(:Node:<Kind>)`, the kind label being the GraphQL type name
//!   from [`NodeKind::type_name`] (`:Principle`, `:Learning`, …). Properties:
//!   `id`, `kind` (`PRINCIPLE`, …), `organisation`, `title`, `description`,
//!   `tags` (a list of strings), `visibility`, `assertion`, `createdAt`,
//!   `updatedAt` (fixed-width strings from [`crate::domain::timestamp`], so string order is time
//!   order, exactly as in SQLite) and `details`, the kind's own fields as a JSON
//!   string, which is what a node is read back from. Lists and counts pick a
//!   kind by the indexed `kind` property rather than by label, so that every
//!   kind shares one statement text per filter shape and Neo4j plans it once.
//! * Copies made for queries, never read back as data: `titleFold` (the title
//!   folded with Rust's `to_lowercase`, so that `titleContains` folds case
//!   exactly as the SQLite store's `pv_fold` does, whatever the JVM's locale),
//!   `searchText` (the words of the long fields, for the full-text index), and
//!   the filterable detail fields `status`, `barrierKind`, `learningKind`,
//!   `severity`, `evidenceLevel`, `confidence` and `embedding`, so filters use
//!   indexes rather than parsing JSON.
//! * A relationship is typed by its kind (`UPHOLDS`, `INFLUENCED`, …) and carries
//!   `assertion` and `props` (every other property as a JSON string, as SQLite's
//!   `props` column); INFLUENCED also carries `on` (an ISO date string) and
//!   `sources` (a list of ids) for the queries that need them. At most one
//!   relationship of a kind joins two nodes one way: `apply` checks it with both
//!   ends locked (see `write.rs`).
//! * One `(:ChangeLock {id: 1})` node: a change set that reads or writes as it
//!   goes (an update, a deletion, a seed) writes it first, so such change sets
//!   run one at a time, as SQLite's `BEGIN IMMEDIATE` makes them. Every change
//!   set also locks the nodes it decides on before it reads them, so that the
//!   checks in `store::apply` hold for the graph they change; a small change
//!   set that only creates and links takes node locks alone, and runs beside
//!   others that touch other nodes. Neither it nor `(:Importing)`, which an
//!   import leaves while it runs, carries the `:Node` label, so no read ever
//!   sees them.
//!
//! Constraints and indexes live in `schema/neo4j/*.cypher`, compiled in and
//! applied at every start (`IF NOT EXISTS`), before the store answers.
//!
//! # Queries
//!
//! Every query is Cypher with parameters. Values never enter a query's text;
//! the only words written into it are labels, relationship types and property
//! names taken from the Rust enums and from constant tables in this module.
//! Batches travel as list parameters (`UNWIND $ids`), so an operation costs a
//! bounded number of round trips whatever the size of its result (results come
//! back in pages of [`FETCH_SIZE`] rows). A change set (`apply`) runs the shared
//! rules of `store::apply` in one transaction; the writer takes the change lock
//! and reads every node and relationship the changes name in one statement up
//! front and writes new nodes and relationships in batches, the audit entry
//! with the last (see `write.rs`), so a seed or a `copy` of tens of thousands of
//! changes is a few dozen round trips, not one per change. A small change set
//! that only creates and links (recording an influence) reads first, without
//! locks, and locks the nodes it read only in the statement that checks what it
//! read and writes: two statements, each a transaction of its own.
//!
//! Timeouts: `connect_timeout` bounds connecting, waiting for a pooled
//! connection and every single reply (the driver's read timeout), and three
//! times it bounds getting a query going at all (the Bolt handshake has no
//! timeout of its own). A server that is down refuses at once: calls fail in
//! microseconds with `Unavailable` and succeed again once it is back.
//!
//! `trace` and `paths` run `store::traverse` over batched neighbour lookups, so
//! they keep exactly the SQLite store's semantics and caps. The lookups read
//! ahead (`walk.rs`): the first one gathers, in one statement, every node the
//! walk may still reach that way (a pruning breadth-first expansion of distinct
//! nodes, never an enumeration of paths), their relationships and far ends, up
//! to `Neo4jOptions::walk_ahead` nodes, so a depth-4 trace is two round trips
//! rather than one or two per level. That statement is the one whose text holds
//! a number, the expansion's depth, which Cypher takes from no parameter.
//! A path search is first tried whole in one statement (`paths.rs`): Neo4j
//! enumerates the walks out of the start, up to a bound that keeps the answer
//! exactly the walk's, and returns the simple paths to the target with their
//! nodes; past the bound the walk answers.
//!
//! Full-text search uses the `node_words` full-text index
//! (`db.index.fulltext.queryNodes`) with Lucene's score; the user's words become
//! a Lucene query built here from letters and digits only, so no operator can be
//! smuggled in, and the snippet is cut in Rust with matching words in `[…]`.
//!
//! Known differences from SQLite: search scores are on Lucene's scale rather
//! than FTS5's; English stop words ("the", "of", …) are not indexed, so a search
//! for stop words alone finds nothing; `dump` lists nodes by id rather than in
//! the order they were created; one statement's reply (a commit included) must
//! come within `connect_timeout`, so raise it for very large copies.

mod access;
mod paths;
mod read;
mod search;
mod walk;
mod write;

pub use walk::BALL_NODES;
pub(crate) use write::{edge_properties, node_properties};

use walk::{Keep, Walker};

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use neo4rs::{ConfigBuilder, Graph, Query};

use super::{
    ApiToken, AuditEntry, AuditQuery, Direction, Failed, GraphStore, ListQuery, NodeFilter, NodeWithEdges, PathRequest,
    Paths, SearchHit, SearchRequest, Trace, TraceRequest, traverse,
};
use crate::domain::{Actor, Applied, Audience, Change, Edge, Error, Node, NodeId, NodeKind, Result, now};

/// The schema, applied statement by statement at every start.
const SCHEMA: &[(&str, &str)] = &[
    ("1-constraints.cypher", include_str!("../../../schema/neo4j/1-constraints.cypher")),
    ("2-indexes.cypher", include_str!("../../../schema/neo4j/2-indexes.cypher")),
    ("3-search.cypher", include_str!("../../../schema/neo4j/3-search.cypher")),
    ("4-access.cypher", include_str!("../../../schema/neo4j/4-access.cypher")),
    ("5-foreign.cypher", include_str!("../../../schema/neo4j/5-foreign.cypher")),
    ("6-lists.cypher", include_str!("../../../schema/neo4j/6-lists.cypher")),
];

/// How many rows one Bolt PULL brings back.
pub const FETCH_SIZE: usize = 10_000;

/// How to reach a Neo4j server, besides its address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Neo4jOptions {
    pub user: String,
    pub password: String,
    /// The database to use; the server's default when `None`.
    pub database: Option<String>,
    /// How many Bolt connections the pool keeps at most.
    pub pool_size: usize,
    /// How long to wait for a connection, and for any one reply, before the
    /// store is declared unavailable.
    pub connect_timeout: Duration,
    /// How many nodes a trace or path search reads ahead in one statement at most; 0 reads
    /// one level at a time (see `walk.rs`).
    pub walk_ahead: usize,
}

impl Default for Neo4jOptions {
    fn default() -> Self {
        Neo4jOptions {
            user: "neo4j".into(),
            password: String::new(),
            database: None,
            pool_size: 16,
            connect_timeout: Duration::from_secs(10),
            walk_ahead: BALL_NODES,
        }
    }
}

impl Neo4jOptions {
    /// The options the `PVGRAPH_NEO4J_*` environment variables give, with defaults.
    pub fn from_env() -> Neo4jOptions {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let mut options = Neo4jOptions::default();
        if let Some(user) = var("PVGRAPH_NEO4J_USER") {
            options.user = user;
        }
        if let Some(password) = var("PVGRAPH_NEO4J_PASSWORD") {
            options.password = password;
        }
        options.database = var("PVGRAPH_NEO4J_DATABASE");
        if let Some(size) = var("PVGRAPH_NEO4J_POOL_SIZE").and_then(|v| v.parse().ok()) {
            options.pool_size = size;
        }
        if let Some(secs) = var("PVGRAPH_NEO4J_CONNECT_TIMEOUT").and_then(|v| v.parse::<f64>().ok()) {
            options.connect_timeout = Duration::from_secs_f64(secs);
        }
        options
    }
}

/// A driver error as the domain sees it: the server out of reach is
/// `Unavailable`, a broken uniqueness rule a `Conflict`, the rest internal.
pub(super) fn db(error: neo4rs::Error) -> Error {
    use neo4rs::Error as E;
    match &error {
        E::Neo4j(e) if e.code().contains("ConstraintValidationFailed") => {
            Error::Conflict("a node with this id already exists".into())
        }
        E::Neo4j(e) if e.code().contains("DatabaseNotFound") => Error::invalid("neo4jDatabase", e.message().to_owned()),
        E::Neo4j(e) if e.code().starts_with("Neo.TransientError") || e.code().contains("Security") => {
            Error::Unavailable(error.into())
        }
        E::IOError { .. }
        | E::ConnectionError
        | E::ConnectionTimedOut
        | E::ServerUnavailableError(_)
        | E::AuthenticationError(_)
        | E::IncompleteBoltExchange
        | E::InvalidDnsName(_)
        | E::UnsupportedVersion(..)
        | E::ProtocolMismatch(_) => Error::Unavailable(error.into()),
        _ => Error::internal(error),
    }
}

/// The store out of reach, for a reason given in words.
pub(super) fn unavailable(why: &str) -> Error {
    Error::Unavailable(anyhow::anyhow!("Neo4j: {why}"))
}

#[derive(Clone)]
pub struct Neo4jStore {
    graph: Graph,
    /// How long one call may wait to get going: a connection, the Bolt
    /// handshake and the first reply. Every later reply is bounded by the
    /// driver's own timeout.
    patience: Duration,
    /// How many read statements have been sent, shared by the clones of this store.
    reads: Arc<AtomicU64>,
    /// How many statements change sets have sent, likewise.
    writes: Arc<AtomicU64>,
    /// `Neo4jOptions::walk_ahead`.
    walk_ahead: usize,
}

impl Neo4jStore {
    /// Connects to the server at `uri` and brings its constraints and indexes up to date.
    pub async fn open(uri: &str, options: &Neo4jOptions) -> Result<Neo4jStore> {
        if options.pool_size == 0 {
            return Err(Error::invalid("neo4jPoolSize", "must be at least 1"));
        }
        let mut config = ConfigBuilder::default()
            .uri(uri)
            .user(options.user.as_str())
            .password(options.password.as_str())
            .max_connections(options.pool_size)
            .fetch_size(FETCH_SIZE)
            .connection_timeout(options.connect_timeout)
            // In this driver version `max_lifetime` is how long a caller waits for a
            // free connection of the pool: no longer than for a new one.
            .max_lifetime(options.connect_timeout);
        if let Some(database) = &options.database {
            config = config.db(database.as_str());
        }
        let config = config.build().map_err(|e| Error::invalid("store", e.to_string()))?;
        let graph = Graph::connect(config).map_err(|e| match e {
            neo4rs::Error::UrlParseError(_) | neo4rs::Error::UnsupportedScheme(_) => {
                Error::invalid("store", format!("{uri}: {e}"))
            }
            other => db(other),
        })?;
        // The handshake has no timeout of its own in the driver; this bounds it.
        let store = Neo4jStore {
            graph,
            patience: options.connect_timeout * 3,
            reads: Arc::default(),
            writes: Arc::default(),
            walk_ahead: options.walk_ahead,
        };
        store.migrate().await?;
        Ok(store)
    }

    /// Applies every schema statement (each idempotent) and waits for the indexes to be online.
    async fn migrate(&self) -> Result<()> {
        for (file, text) in SCHEMA {
            for statement in statements(text) {
                let outcome = tokio::time::timeout(self.patience, self.graph.run(neo4rs::query(&statement)))
                    .await
                    .map_err(|_| unavailable("no answer in time"))?;
                outcome.map_err(|e| {
                    let error = db(e);
                    tracing::error!(file, statement, error = ?error, "a schema statement failed");
                    error
                })?;
            }
        }
        // A new index over a large graph may still be filling: say so, and go on.
        let seconds = self.patience.as_secs().clamp(1, 3600) as i64 / 3;
        let wait = neo4rs::query("CALL db.awaitIndexes($seconds)").param("seconds", seconds.max(1));
        if let Err(e) = self.graph.run(wait).await {
            tracing::warn!(error = %e, "Neo4j indexes are not all online yet; lists and search may be slow or partial");
        }
        Ok(())
    }

    /// How many read statements this store has sent so far (each one round trip, and one more
    /// per [`FETCH_SIZE`] rows of its answer), so that tests and benchmarks can count them.
    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    /// How many statements change sets have sent so far (BEGIN and COMMIT not counted), so that
    /// tests and benchmarks can count a change set's round trips.
    pub fn change_statements(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }

    /// Runs a change set (or an import) to its end in a task of its own. Dropped half-way with
    /// its caller (a client that hangs up in the middle of a mutation), its transaction would
    /// stay open on an idle pooled connection, holding its locks, until that connection's
    /// next use, and every other change set would wait behind it.
    async fn to_the_end<T, Work>(&self, work: impl FnOnce(Neo4jStore) -> Work) -> Result<T, Failed>
    where
        T: Send + 'static,
        Work: Future<Output = Result<T, Failed>> + Send + 'static,
    {
        let run = tokio::spawn(work(self.clone()));
        run.await.unwrap_or_else(|error| Err(Failed { index: 0, error: Error::internal(error) }))
    }

    /// Runs a query outside any explicit transaction and reads every row.
    async fn rows(&self, query: Query) -> Result<Vec<neo4rs::Row>> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        auto_commit(&self.graph, self.patience, query).await
    }
}

/// Runs a query in a transaction of its own and reads every row; `patience` bounds getting it
/// going (a connection, the handshake, the first reply).
async fn auto_commit(graph: &Graph, patience: Duration, query: Query) -> Result<Vec<neo4rs::Row>> {
    let mut stream = tokio::time::timeout(patience, graph.execute(query))
        .await
        .map_err(|_| unavailable("no answer in time"))?
        .map_err(db)?;
    let mut rows = Vec::new();
    while let Some(row) = stream.next().await.map_err(db)? {
        rows.push(row);
    }
    Ok(rows)
}

/// The statements of a schema file: `;`-separated, `//` comments dropped.
fn statements(text: &str) -> Vec<String> {
    let code: String = text
        .lines()
        .map(|line| if line.trim_start().starts_with("//") { "" } else { line })
        .collect::<Vec<_>>()
        .join("\n");
    code.split(';').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

#[async_trait]
impl GraphStore for Neo4jStore {
    fn backend(&self) -> &'static str {
        "neo4j"
    }

    fn confirms_callers(&self) -> bool {
        true
    }

    async fn ping(&self) -> Result<()> {
        let rows = self.rows(neo4rs::query("RETURN 1 AS one")).await?;
        match rows.first().map(|r| r.get::<i64>("one")) {
            Some(Ok(1)) => Ok(()),
            _ => Err(Error::Unavailable(anyhow::anyhow!("Neo4j did not answer RETURN 1 with 1"))),
        }
    }

    async fn nodes(&self, ids: &[NodeId]) -> Result<Vec<Node>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        read::nodes(&self.rows(read::nodes_query(ids)).await?)
    }

    async fn list(&self, query: &ListQuery) -> Result<Vec<Node>> {
        let mut nodes = read::nodes(&self.rows(read::list_query(query)?).await?)?;
        if query.from_end {
            nodes.reverse();
        }
        Ok(nodes)
    }

    async fn count(&self, kind: NodeKind, filter: &NodeFilter) -> Result<u64> {
        let rows = self.rows(read::count_query(kind, filter)?).await?;
        let count: i64 =
            rows.first().ok_or_else(|| read::corrupt("count returned no row"))?.get("count").map_err(read::corrupt)?;
        Ok(count as u64)
    }

    async fn edges(&self, ids: &[NodeId], direction: Direction) -> Result<Vec<Edge>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        read::edges(
            &self.rows(read::edges_query(ids, direction, &Audience::Everything, read::Reach::All, false)).await?,
        )
    }

    async fn visible_edges(&self, ids: &[NodeId], direction: Direction, audience: &Audience) -> Result<Vec<Edge>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        read::edges(&self.rows(read::edges_query(ids, direction, audience, read::Reach::Local, false)).await?)
    }

    async fn visible_edges_and_ends(
        &self,
        ids: &[NodeId],
        direction: Direction,
        audience: &Audience,
    ) -> Result<(Vec<Edge>, Vec<Node>)> {
        if ids.is_empty() {
            return Ok((Vec::new(), Vec::new()));
        }
        let rows = self.rows(read::edges_query(ids, direction, audience, read::Reach::Local, true)).await?;
        Ok((read::edges(&rows)?, read::nodes(&rows)?))
    }

    async fn visible_node_with_edges(
        &self,
        id: &NodeId,
        directions: &[Direction],
        audience: &Audience,
    ) -> Result<Option<NodeWithEdges>> {
        let rows = self.rows(read::node_with_edges_query(id, directions, audience)).await?;
        read::node_with_edges(&rows, directions).map(Some)
    }

    async fn foreign_edges(&self, ids: &[NodeId], direction: Direction) -> Result<Vec<Edge>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        read::edges(
            &self.rows(read::edges_query(ids, direction, &Audience::Everything, read::Reach::Abroad, false)).await?,
        )
    }

    async fn apply_as(&self, changes: Vec<Change>, actor: Option<&Actor>) -> Result<Vec<Applied>, Failed> {
        let actor = actor.cloned();
        self.to_the_end(move |store| async move {
            write::apply(&store.graph, store.patience, &store.writes, changes, now(), actor.as_ref()).await
        })
        .await
    }

    async fn save_token(&self, token: &ApiToken) -> Result<()> {
        self.rows(access::save_token_query(token)).await.map(|_| ())
    }

    async fn revoke_token(&self, id: &str) -> Result<bool> {
        let rows = self.rows(access::revoke_token_query(id, now())).await?;
        let revoked: i64 =
            rows.first().ok_or_else(|| read::corrupt("no row"))?.get("revoked").map_err(read::corrupt)?;
        Ok(revoked > 0)
    }

    async fn tokens(&self) -> Result<Vec<ApiToken>> {
        access::tokens(&self.rows(access::tokens_query()).await?)
    }

    async fn token_by_hash(&self, hash: &str) -> Result<Option<ApiToken>> {
        Ok(access::tokens(&self.rows(access::token_by_hash_query(hash)).await?)?.pop())
    }

    async fn audit_log(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>> {
        access::audit_entries(&self.rows(access::audit_log_query(query)).await?)
    }

    async fn audit_count(&self, organisation: &str) -> Result<u64> {
        let rows = self.rows(access::audit_count_query(organisation)).await?;
        let count: i64 = rows.first().ok_or_else(|| read::corrupt("no row"))?.get("count").map_err(read::corrupt)?;
        Ok(count as u64)
    }

    async fn audit_organisations(&self) -> Result<Vec<String>> {
        let rows = self.rows(access::audit_organisations_query()).await?;
        rows.iter().map(|row| row.get("organisation").map_err(read::corrupt)).collect()
    }

    async fn restore_access(&self, tokens: &[ApiToken], entries: &[AuditEntry]) -> Result<()> {
        self.rows(access::restore_query(tokens, entries)).await.map(|_| ())
    }

    async fn import(&self, batches: super::ChangeBatches) -> Result<usize, Failed> {
        self.to_the_end(move |store| async move {
            write::import(&store.graph, store.patience, &store.writes, batches, now()).await
        })
        .await
    }

    async fn is_empty(&self) -> Result<bool> {
        let rows = self.rows(neo4rs::query("RETURN NOT EXISTS { MATCH (n:Node) } AS empty")).await?;
        rows.first().ok_or_else(|| read::corrupt("no row"))?.get("empty").map_err(read::corrupt)
    }

    async fn dump(&self) -> Result<(Vec<Node>, Vec<Edge>)> {
        let nodes = read::nodes(&self.rows(read::dump_nodes_query()).await?)?;
        let edges = read::edges(&self.rows(read::dump_edges_query()).await?)?;
        Ok((nodes, edges))
    }

    async fn trace(&self, request: &TraceRequest) -> Result<Trace> {
        // The trace's first level reaches `max_depth + 1` levels (see `traverse::trace`).
        let mut walker = Walker::new(self, request.direction, &request.via, Keep::Ball).ahead(
            &request.from,
            request.direction,
            request.max_depth + 1,
        );
        traverse::trace(&mut walker, request).await
    }

    async fn paths(&self, request: &PathRequest) -> Result<Paths> {
        // The two sides' levels add up to `max_depth` at most (see `traverse::meet`); the start's
        // side grows first and on ties, the target's only while its frontier is the smaller, so
        // each side's first ball holds its likely share: a third of the levels for the target's
        // (at least one, unless the start's single level ends the search), the rest for the
        // start's. A side that walks further reads on, one more
        // statement; a ball deeper than its side walks is read for nothing (Q4 read twice the
        // rows it used when the start's ball held all `max_depth` levels).
        let back = if request.max_depth < 2 { 0 } else { (request.max_depth / 3).max(1) };
        let mut walker = Walker::new(self, request.direction, &request.via, Keep::Visibility);
        // First the search whole in one statement, unless too many walks leave the start.
        let over = paths::bound(request, self.walk_ahead);
        if over > 0 {
            match paths::answer(&self.rows(paths::query(request, over)).await?, request, over)? {
                paths::Searched::Found(found) => return Ok(found),
                paths::Searched::Wide(ends) => walker = walker.knowing(ends),
            }
        }
        let mut walker = walker.ahead(&request.from, request.direction, request.max_depth - back).ahead(
            &request.to,
            request.direction.reversed(),
            back,
        );
        traverse::paths(&mut walker, request).await
    }

    async fn search(&self, request: &SearchRequest) -> Result<Vec<SearchHit>> {
        let Some((query, words)) = search::query(request) else {
            return Err(Error::invalid("text", "has no words to search for"));
        };
        search::hits(&self.rows(query).await?, &words)
    }

    async fn influences_across(&self, from: Option<&str>, to: Option<&str>, limit: usize) -> Result<Vec<Edge>> {
        read::edges(&self.rows(read::influences_across_query(from, to, limit)).await?)
    }

    async fn embedding_pairs(&self, organisation: Option<&str>) -> Result<Vec<(Node, Node)>> {
        read::pairs(&self.rows(read::embedding_pairs_query(organisation)).await?)
    }
}

/// Opens a Neo4j store behind the port.
pub(super) async fn open(uri: &str, options: &Neo4jOptions) -> Result<Arc<dyn GraphStore>> {
    Ok(Arc::new(Neo4jStore::open(uri, options).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_files_split_into_statements() {
        let all: Vec<String> = SCHEMA.iter().flat_map(|(_, text)| statements(text)).collect();
        assert!(all.len() >= 14, "{all:?}");
        for statement in &all {
            assert!(statement.contains("IF NOT EXISTS"), "not idempotent: {statement}");
            assert!(!statement.contains("//"), "a comment was left in: {statement}");
        }
    }
}
