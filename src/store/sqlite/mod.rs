//! The embedded store: one SQLite file through rusqlite (bundled), in WAL mode
//! with `synchronous=FULL` and foreign keys on (an import into an empty store
//! writes with a rollback journal instead, see `write::import`). One writer connection behind a
//! mutex (SQLite allows one writer anyway) and a pool of readers. Writes, lists,
//! searches and long walks run on tokio's blocking threads; a lookup of a few ids
//! runs on the task that asks (`SqliteStore::read_small`), and so may a
//! token's (`token_by_hash_at_once`) and a short walk (`SqliteStore::walk`).

mod access;
pub mod backup;
mod read;
mod walks;
mod write;

use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use r2d2::Pool;
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::Connection;
use rusqlite::functions::FunctionFlags;
use rusqlite_migration::{M, Migrations};

use super::{
    ApiToken, AuditEntry, AuditQuery, CacheFigures, Direction, Failed, GraphStore, ListQuery, NodeFilter,
    NodeWithEdges, PathRequest, Paths, SearchHit, SearchRequest, Trace, TraceRequest, traverse,
};
use crate::domain::{Actor, Applied, Audience, Change, Edge, Error, Node, NodeId, NodeKind, Result, now};

/// How many reader connections the pool keeps at most.
const READERS: u32 = 8;

/// How many ids a lookup may ask for and still be a small read (`SqliteStore::read_small`): the
/// fields of one node, or of a short list; a page of fifty goes to a blocking thread.
const SMALL_LOOKUP: usize = 16;

/// How many rows a walk may read on the task that asks before it goes to a blocking thread
/// (`SqliteStore::walk`). A row takes SQLite, the decoding of it and the walk's bookkeeping a
/// few microseconds, so a walk holds the async runtime's thread for about a millisecond at most;
/// Q3's trace in the benchmark reads 74 rows and Q4's path search 79.
const WALK_HERE_ROWS: usize = 256;

/// How many nodes and relationship lists (each node's one way) that walks and relationship
/// fields read are kept in memory by default (`walks.rs`, `--walk-cache-entries`). On the
/// benchmark's graph an entry takes about 2 KB with what the maps around it take, so a full
/// cache is some 150 MB; a trace at its default cap of 5,000 nodes fits.
pub const WALK_CACHE_ENTRIES: usize = 65_536;

/// How many prepared statements each connection keeps.
const STATEMENT_CACHE: usize = 64;

/// How long a connection waits for a lock another holds, in milliseconds.
const BUSY_TIMEOUT_MS: u64 = 5_000;

/// The versioned schema; a new version is a new entry, never an edit.
const MIGRATIONS: [&str; 6] = [
    include_str!("schema.sql"),
    include_str!("search.sql"),
    include_str!("access.sql"),
    include_str!("foreign.sql"),
    include_str!("lists.sql"),
    include_str!("walks.sql"),
];

fn migrations() -> Migrations<'static> {
    Migrations::new(MIGRATIONS.iter().map(|sql| M::up(sql)).collect())
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    // SQLite folds only ASCII case; titles in any script need Rust's folding.
    conn.create_scalar_function(
        "pv_fold",
        1,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| Ok(ctx.get::<String>(0)?.to_lowercase()),
    )?;
    // Room for every statement a busy server repeats (lookups, pages of lists, tokens), so that
    // none is parsed again because others pushed it out of rusqlite's default 16.
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = ON;
         PRAGMA busy_timeout = {BUSY_TIMEOUT_MS};
         PRAGMA cache_size = -32000;"
    ))
}

#[derive(Clone)]
pub struct SqliteStore {
    readers: Pool<SqliteConnectionManager>,
    writer: Arc<Mutex<Connection>>,
    /// What walks and relationship fields read, for the next ones while the graph stays as it
    /// was (`walks.rs`).
    walks: Arc<walks::WalkCache>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and brings its schema up to date.
    pub fn open(path: &Path) -> Result<SqliteStore> {
        SqliteStore::open_keeping(path, WALK_CACHE_ENTRIES)
    }

    /// Opens the store as `open` does, keeping at most `walk_entries` nodes and relationship
    /// lists that walks read in memory (`walks.rs`); with 0, every walk reads the file, as the
    /// store's micro-benchmarks do to time SQLite's part.
    pub fn open_keeping(path: &Path, walk_entries: usize) -> Result<SqliteStore> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(Error::internal)?;
        }
        let mut writer = Connection::open(path).map_err(Error::internal)?;
        configure(&writer).map_err(Error::internal)?;
        migrations().to_latest(&mut writer).map_err(Error::internal)?;
        let manager = SqliteConnectionManager::file(path).with_init(|c| {
            configure(c)?;
            c.execute_batch("PRAGMA query_only = ON;")
        });
        // Readers are opened when first needed, not here: an import into the empty store just
        // opened writes it with a rollback journal, which only a connection alone on the file
        // may switch to (see `write::import`).
        let readers = Pool::builder().max_size(READERS).min_idle(Some(0)).build(manager).map_err(Error::internal)?;
        let walks = Arc::new(walks::WalkCache::new(walk_entries));
        Ok(SqliteStore { readers, writer: Arc::new(Mutex::new(writer)), walks })
    }

    /// Runs `work` with a reader connection on a blocking thread.
    async fn read<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let readers = self.readers.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = Checkout(readers.get().map_err(|e| Error::Unavailable(e.into()))?);
            work(&mut conn.0)
        })
        .await
        .map_err(Error::internal)?
    }

    /// Runs a small read (a lookup of a few ids) at once on the task that asks, when a reader
    /// connection is idle: such a read takes SQLite tens of microseconds (Q1's node with its
    /// relationships 38 on average; benches/HISTORY.md), less than the trip to a blocking thread and
    /// back that `read` takes, and short enough not to hold up the async runtime's other tasks.
    /// With no connection idle it waits for one on a blocking thread, as `read` does. A panic
    /// is the read's error, as a blocking thread's would be.
    async fn read_small<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        match self.read_here(work) {
            Ok(answer) => answer,
            Err(work) => self.read(work).await,
        }
    }

    /// Runs `work` at once on the asking thread when a reader connection is idle; gives `work`
    /// back when none is. A panic is the read's error.
    fn read_here<T, F>(&self, work: F) -> std::result::Result<Result<T>, F>
    where
        F: FnOnce(&mut Connection) -> Result<T>,
    {
        let Some(conn) = self.readers.try_get() else {
            return Err(work);
        };
        let mut conn = Checkout(conn);
        Ok(std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(&mut conn.0)))
            .unwrap_or_else(|_| Err(Error::internal(anyhow::anyhow!("a small read panicked")))))
    }

    /// A lookup by ids: nothing to ask for none, else as `read_sized` reads. `work` gets the
    /// ids as `read::id_list` writes them.
    async fn read_by_ids<T, F>(&self, ids: &[NodeId], work: F) -> Result<T>
    where
        T: Default + Send + 'static,
        F: FnOnce(&mut Connection, &str) -> Result<T> + Send + 'static,
    {
        if ids.is_empty() {
            return Ok(T::default());
        }
        let list = read::id_list(ids);
        self.read_sized(ids.len(), move |c: &mut Connection| work(c, &list)).await
    }

    /// A read for `ids` ids: a small read (`read_small`) for up to `SMALL_LOOKUP` of them; else `read`.
    async fn read_sized<T, F>(&self, ids: usize, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        if ids <= SMALL_LOOKUP { self.read_small(work).await } else { self.read(work).await }
    }

    /// Runs a walk (a trace, a path search) in one read transaction. Most walks are short, and
    /// the trip to a blocking thread and back costs more than a short walk's lookups, so a walk
    /// starts at once on the task that asks when a reader connection is idle, with a budget of
    /// `WALK_HERE_ROWS` rows. One that outgrows it stops there and is walked again, whole, on a
    /// blocking thread, as is one that finds no idle reader: what the first try read is lost,
    /// but that is at most the budget, and keeps a long walk from holding up the runtime's
    /// other tasks. After a walk done here the task yields once, so a request that makes many
    /// short walks still notices its time limit between them (the `timeout` in `http::graphql_http`).
    async fn walk<T, W>(&self, traversal: W) -> Result<T>
    where
        T: Send + 'static,
        W: Fn(&mut read::Reader<'_>) -> Result<T> + Send + 'static,
    {
        let walks = self.walks.clone();
        match self.read_here(|c| read::walk_within(c, Some(&walks), WALK_HERE_ROWS, &traversal)) {
            Ok(Ok(Some(answer))) => {
                tokio::task::yield_now().await;
                return Ok(answer);
            }
            Ok(Err(e)) => return Err(e),
            Ok(Ok(None)) | Err(_) => {}
        }
        self.read(move |c| read::walk(c, Some(&walks), traversal)).await
    }

    /// Runs `work` with the writer connection on a blocking thread.
    async fn write<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let writer = self.writer.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = writer.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            work(&mut conn)
        })
        .await
        .map_err(Error::internal)?
    }
}

/// A reader connection while it is lent out. It goes back to the pool outside any
/// transaction: one that work left open (a walk that panicked, see `read::walk`) is
/// rolled back, so that the next reader neither sees an old snapshot nor holds a
/// read lock that keeps the write-ahead log from being checkpointed.
struct Checkout(r2d2::PooledConnection<SqliteConnectionManager>);

impl Drop for Checkout {
    fn drop(&mut self) {
        if !self.0.is_autocommit()
            && let Err(e) = self.0.execute_batch("ROLLBACK")
        {
            tracing::warn!(error = %e, "ending a read transaction left open");
        }
    }
}

#[async_trait]
impl GraphStore for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    fn cache_figures(&self) -> Option<CacheFigures> {
        Some(self.walks.figures())
    }

    async fn ping(&self) -> Result<()> {
        self.read(|c| c.query_row("SELECT 1", [], |_| Ok(())).map_err(Error::internal)).await
    }

    async fn nodes(&self, ids: &[NodeId]) -> Result<Vec<Node>> {
        self.read_by_ids(ids, |c, ids| read::nodes_by_ids(c, ids)).await
    }

    async fn list(&self, query: &ListQuery) -> Result<Vec<Node>> {
        let query = query.clone();
        self.read(move |c| read::list(c, &query)).await
    }

    async fn count(&self, kind: NodeKind, filter: &NodeFilter) -> Result<u64> {
        let filter = filter.clone();
        self.read(move |c| read::count(c, kind, &filter)).await
    }

    async fn edges(&self, ids: &[NodeId], direction: Direction) -> Result<Vec<Edge>> {
        self.read_by_ids(ids, move |c, ids| read::edges(c, ids, direction)).await
    }

    async fn foreign_edges(&self, ids: &[NodeId], direction: Direction) -> Result<Vec<Edge>> {
        self.read_by_ids(ids, move |c, ids| read::edges_abroad(c, ids, direction)).await
    }

    async fn visible_edges(&self, ids: &[NodeId], direction: Direction, audience: &Audience) -> Result<Vec<Edge>> {
        let audience = audience.clone();
        self.read_by_ids(ids, move |c, ids| read::visible_edges(c, ids, direction, &audience)).await
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
        let (ids, audience, walks) = (ids.to_vec(), audience.clone(), self.walks.clone());
        self.read_sized(ids.len(), move |c| {
            read::walk(c, Some(&walks), |reader| reader.visible_edges_and_ends(&ids, direction, &audience))
        })
        .await
    }

    /// The node and its relationships in one read, where a node lookup and a lookup of its
    /// relationships would take two in turn.
    async fn visible_node_with_edges(
        &self,
        id: &NodeId,
        directions: &[Direction],
        audience: &Audience,
    ) -> Result<Option<NodeWithEdges>> {
        let (id, directions, audience, walks) = (id.clone(), directions.to_vec(), audience.clone(), self.walks.clone());
        self.read_small(move |c| read::node_with_edges(c, Some(&walks), &id, &directions, &audience)).await.map(Some)
    }

    async fn apply_as(&self, changes: Vec<Change>, actor: Option<&Actor>) -> Result<Vec<Applied>, Failed> {
        let writer = self.writer.clone();
        let actor = actor.cloned();
        let outcome = tokio::task::spawn_blocking(move || {
            let mut conn = writer.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            write::apply(&mut conn, changes, now(), actor.as_ref())
        })
        .await;
        outcome.unwrap_or_else(|e| Err(Failed { index: 0, error: Error::internal(e) }))
    }

    async fn save_token(&self, token: &ApiToken) -> Result<()> {
        let token = token.clone();
        self.write(move |c| access::save_token(c, &token)).await
    }

    async fn revoke_token(&self, id: &str) -> Result<bool> {
        let id = id.to_owned();
        self.write(move |c| access::revoke_token(c, &id, now())).await
    }

    async fn tokens(&self) -> Result<Vec<ApiToken>> {
        self.read(|c| access::tokens(c)).await
    }

    async fn token_by_hash(&self, hash: &str) -> Result<Option<ApiToken>> {
        let hash = hash.to_owned();
        // On a blocking thread, though a small read: requests with one token that arrive while
        // its lookup is on its way share the next one (`auth::lookups`), which under load saves
        // more than the trip costs (benches/HISTORY.md, "small reads on the asking task").
        self.read(move |c| access::token_by_hash(c, &hash)).await
    }

    async fn token_by_hash_at_once(&self, hash: &str) -> Option<Result<Option<ApiToken>>> {
        self.read_here(|c| access::token_by_hash(c, hash)).ok()
    }

    async fn audit_log(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>> {
        let query = query.clone();
        self.read(move |c| access::audit_log(c, &query)).await
    }

    async fn audit_count(&self, organisation: &str) -> Result<u64> {
        let organisation = organisation.to_owned();
        self.read(move |c| access::audit_count(c, &organisation)).await
    }

    async fn audit_organisations(&self) -> Result<Vec<String>> {
        self.read(|c| access::audit_organisations(c)).await
    }

    async fn restore_access(&self, tokens: &[ApiToken], entries: &[AuditEntry]) -> Result<()> {
        let (tokens, entries) = (tokens.to_vec(), entries.to_vec());
        self.write(move |c| access::restore(c, &tokens, &entries)).await
    }

    async fn import(&self, batches: super::ChangeBatches) -> Result<usize, Failed> {
        let writer = self.writer.clone();
        let outcome = tokio::task::spawn_blocking(move || {
            let mut conn = writer.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            write::import(&mut conn, batches, now())
        })
        .await;
        outcome.unwrap_or_else(|e| Err(Failed { index: 0, error: Error::internal(e) }))
    }

    async fn is_empty(&self) -> Result<bool> {
        self.read(|c| c.query_row("SELECT NOT EXISTS (SELECT 1 FROM nodes)", [], |r| r.get(0)).map_err(Error::internal))
            .await
    }

    async fn dump(&self) -> Result<(Vec<Node>, Vec<Edge>)> {
        self.read(|c| read::dump(c)).await
    }

    async fn trace(&self, request: &TraceRequest) -> Result<Trace> {
        let request = request.clone();
        self.walk(move |reader| futures::executor::block_on(traverse::trace(reader, &request))).await
    }

    async fn paths(&self, request: &PathRequest) -> Result<Paths> {
        let request = request.clone();
        self.walk(move |reader| futures::executor::block_on(traverse::paths(reader, &request))).await
    }

    async fn influences_across(&self, from: Option<&str>, to: Option<&str>, limit: usize) -> Result<Vec<Edge>> {
        let (from, to) = (from.map(str::to_owned), to.map(str::to_owned));
        self.read(move |c| read::influences_across(c, from.as_deref(), to.as_deref(), limit)).await
    }

    async fn embedding_pairs(&self, organisation: Option<&str>) -> Result<Vec<(Node, Node)>> {
        let organisation = organisation.map(str::to_owned);
        self.read(move |c| read::embedding_pairs(c, organisation.as_deref())).await
    }

    async fn search(&self, request: &SearchRequest) -> Result<Vec<SearchHit>> {
        let request = request.clone();
        self.read(move |c| read::search(c, &request)).await
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::domain::EdgeRecord;

    fn id(text: &str) -> NodeId {
        NodeId::parse(text).unwrap()
    }

    fn node(record: Value) -> Node {
        let Value::Object(map) = record else { panic!("a record is an object") };
        Node::from_record(map, now()).unwrap()
    }

    fn edge(record: Value) -> Edge {
        EdgeRecord::from_json(record).and_then(EdgeRecord::into_edge).unwrap()
    }

    fn keys(edges: &[Edge]) -> Vec<String> {
        let mut keys: Vec<String> = edges.iter().map(|e| format!("{} {} {}", e.from, e.kind.as_str(), e.to)).collect();
        keys.sort();
        keys
    }

    /// A store holding a learning that influenced a principle that upholds a value.
    async fn small_store(dir: &tempfile::TempDir) -> SqliteStore {
        let store = SqliteStore::open(&dir.path().join("graph.db")).unwrap();
        let changes = vec![
            Change::Create(node(json!({"id": "t:organisation:t", "title": "Test org"}))),
            Change::Create(node(json!({"id": "t:value:v", "title": "Value", "definition": "good"}))),
            Change::Create(node(json!({"id": "t:principle:p", "title": "Principle", "statement": "do good"}))),
            Change::Create(node(json!({
                "id": "t:learning:l", "title": "Learning", "statement": "we learnt", "kind": "MINDSET",
                "capturedOn": "2024-03-01"
            }))),
            Change::Link(edge(json!({"kind": "UPHOLDS", "from": "t:principle:p", "to": "t:value:v"}))),
        ];
        store.apply(changes).await.map_err(|f| f.error).unwrap();
        store
    }

    #[tokio::test]
    async fn ids_given_twice_are_read_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = small_store(&dir).await;
        let (p, v) = (id("t:principle:p"), id("t:value:v"));
        let mut found: Vec<String> =
            store.nodes(&[p.clone(), v.clone(), p.clone()]).await.unwrap().iter().map(|n| n.id.to_string()).collect();
        found.sort();
        assert_eq!(found, ["t:principle:p", "t:value:v"]);
        let upholds = ["t:principle:p UPHOLDS t:value:v"];
        assert_eq!(keys(&store.edges(&[p.clone(), p.clone()], Direction::Out).await.unwrap()), upholds);
        assert_eq!(keys(&store.edges(&[v.clone(), p.clone(), v.clone()], Direction::In).await.unwrap()), upholds);
        for audience in [Audience::Everything, Audience::Public, Audience::Member("t".into())] {
            let seen = store.visible_edges(&[v.clone(), v.clone()], Direction::In, &audience).await.unwrap();
            assert_eq!(keys(&seen), upholds, "{audience:?}");
        }
        let abroad = edge(json!({"kind": "UPHOLDS", "from": "t:principle:p", "to": "nw:value:w"}));
        store.apply(vec![Change::Link(abroad)]).await.map_err(|f| f.error).unwrap();
        let w = id("nw:value:w");
        assert_eq!(keys(&store.foreign_edges(&[w.clone(), w.clone()], Direction::In).await.unwrap()).len(), 1);
        assert_eq!(keys(&store.edges(&[p.clone(), p], Direction::Out).await.unwrap()).len(), 2);
    }

    #[tokio::test]
    async fn a_foreign_relationship_written_after_reads_is_read_by_every_reader() {
        let dir = tempfile::tempdir().unwrap();
        let store = small_store(&dir).await;
        let (l, x) = (read::id_list(&[id("t:learning:l")]), read::id_list(&[id("nw:principle:x")]));
        // Every connection of the pool at once, each having read (and kept its statements) before the write.
        let readers: Vec<_> = (0..READERS).map(|_| store.readers.get().unwrap()).collect();
        for conn in &readers {
            assert!(read::edges(conn, &l, Direction::Out).unwrap().is_empty());
            assert!(read::edges(conn, &x, Direction::In).unwrap().is_empty());
            assert!(read::edges_abroad(conn, &l, Direction::Out).unwrap().is_empty());
        }
        let abroad = edge(json!({
            "kind": "INFLUENCED", "from": "t:learning:l", "to": "nw:principle:x", "how": "REVISED_PRINCIPLE",
            "systemCondition": "MENTAL_MODELS", "on": "2024-03-04", "strength": "STRONG", "assertion": "INFERRED"
        }));
        store.apply(vec![Change::Link(abroad.clone())]).await.map_err(|f| f.error).unwrap();
        let once = keys(std::slice::from_ref(&abroad));
        for conn in &readers {
            assert_eq!(keys(&read::edges(conn, &l, Direction::Out).unwrap()), once);
            assert_eq!(keys(&read::edges(conn, &x, Direction::In).unwrap()), once);
            assert_eq!(keys(&read::edges_abroad(conn, &l, Direction::Out).unwrap()), once);
        }
        // And gone again for every reader once it is removed.
        let unlink = Change::Unlink { from: abroad.from.clone(), kind: abroad.kind, to: abroad.to.clone() };
        store.apply(vec![unlink]).await.map_err(|f| f.error).unwrap();
        for conn in &readers {
            assert!(read::edges(conn, &l, Direction::Out).unwrap().is_empty());
            assert!(read::edges(conn, &x, Direction::In).unwrap().is_empty());
        }
    }

    /// Which thread ran a read.
    fn thread(_: &mut Connection) -> Result<std::thread::ThreadId> {
        Ok(std::thread::current().id())
    }

    #[tokio::test]
    async fn a_small_read_runs_on_the_asking_thread_while_a_reader_is_idle() {
        let dir = tempfile::tempdir().unwrap();
        let store = small_store(&dir).await;
        // A read on a blocking thread leaves its connection idle in the pool.
        assert_ne!(store.read(thread).await.unwrap(), std::thread::current().id());
        assert_eq!(store.read_small(thread).await.unwrap(), std::thread::current().id());
        // Lookups of a few ids are small reads; of many, not; of none, no read at all.
        let lookup = |c: &mut Connection, _: &str| thread(c).map(Some);
        let (few, many) = (vec![id("t:value:v"); SMALL_LOOKUP], vec![id("t:value:v"); SMALL_LOOKUP + 1]);
        assert_eq!(store.read_by_ids(&few, lookup).await.unwrap(), Some(std::thread::current().id()));
        assert_ne!(store.read_by_ids(&many, lookup).await.unwrap(), Some(std::thread::current().id()));
        assert_eq!(store.read_by_ids(&[], lookup).await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_small_read_waits_for_a_reader_on_a_blocking_thread_when_none_is_idle() {
        let dir = tempfile::tempdir().unwrap();
        let store = small_store(&dir).await;
        let lent: Vec<_> = (0..READERS).map(|_| store.readers.get().unwrap()).collect();
        let waiting = tokio::spawn({
            let store = store.clone();
            async move { store.read_small(|c| Ok((thread(c)?, read::nodes_by_ids(c, r#"["t:value:v"]"#)?))).await }
        });
        let mut waiting = std::pin::pin!(waiting);
        assert!(tokio::time::timeout(std::time::Duration::from_millis(100), &mut waiting).await.is_err());
        drop(lent);
        let (ran_on, found) = waiting.await.unwrap().unwrap();
        assert_ne!(ran_on, std::thread::current().id());
        assert_eq!(found.len(), 1);
    }

    #[tokio::test]
    async fn a_small_read_that_panics_fails_and_gives_its_reader_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = small_store(&dir).await;
        store.read(thread).await.unwrap();
        let failed = store
            .read_small(|c| -> Result<()> {
                c.execute_batch("BEGIN").unwrap();
                panic!("a read gone wrong")
            })
            .await;
        assert!(matches!(failed, Err(Error::Internal(_))), "{failed:?}");
        // The reader went back to the pool, out of the transaction the read left open.
        let conn = store.readers.try_get().expect("the reader is idle again");
        assert!(conn.is_autocommit());
    }

    /// A trace from `from` upstream, as far as `max_depth`, for everyone.
    fn upstream(from: &str, max_depth: u32) -> TraceRequest {
        TraceRequest {
            from: id(from),
            direction: traverse::TraceDirection::Upstream,
            max_depth,
            via: Vec::new(),
            kinds: Vec::new(),
            as_of: None,
            audience: Audience::Everything,
            max_nodes: 5_000,
        }
    }

    /// Runs a walk as the store's trace and paths do, saying which thread walked it.
    async fn on_thread<T, W>(store: &SqliteStore, walk: W) -> (std::thread::ThreadId, T)
    where
        T: Send + 'static,
        W: Fn(&mut read::Reader<'_>) -> Result<T> + Send + 'static,
    {
        store.walk(move |reader| Ok((std::thread::current().id(), walk(reader)?))).await.unwrap()
    }

    /// Runs a trace as `SqliteStore::trace` does, saying which thread walked it and what it found.
    async fn walked(store: &SqliteStore, request: TraceRequest) -> (std::thread::ThreadId, Vec<String>) {
        let (ran_on, found) =
            on_thread(store, move |reader| futures::executor::block_on(traverse::trace(reader, &request))).await;
        let mut ids: Vec<String> = found.nodes.iter().map(|(n, _)| n.id.to_string()).collect();
        ids.sort();
        (ran_on, ids)
    }

    #[tokio::test]
    async fn a_short_walk_runs_on_the_asking_thread_and_one_past_its_budget_again_on_a_blocking_thread() {
        let dir = tempfile::tempdir().unwrap();
        let store = small_store(&dir).await;
        // A value upheld by more principles than a walk here may read rows.
        let mut changes = Vec::new();
        for i in 0..WALK_HERE_ROWS {
            let principle = format!("t:principle:p{i}");
            changes.push(Change::Create(node(json!({"id": principle, "title": "P", "statement": "s"}))));
            changes.push(Change::Link(edge(json!({"kind": "UPHOLDS", "from": principle, "to": "t:value:wide"}))));
        }
        changes.push(Change::Create(node(json!({"id": "t:value:wide", "title": "Wide", "definition": "d"}))));
        changes.rotate_right(1);
        store.apply(changes).await.map_err(|f| f.error).unwrap();
        store.read(thread).await.unwrap();

        let (ran_on, found) = walked(&store, upstream("t:value:v", 4)).await;
        assert_eq!(ran_on, std::thread::current().id());
        assert_eq!(found, ["t:principle:p", "t:value:v"]);

        let (ran_on, found) = walked(&store, upstream("t:value:wide", 1)).await;
        assert_ne!(ran_on, std::thread::current().id());
        assert_eq!(found.len(), WALK_HERE_ROWS + 1);
        assert!(found.contains(&"t:value:wide".to_owned()) && found.contains(&"t:principle:p0".to_owned()));

        // A path search is a walk too: between two of the principles, through the value they
        // share, it reads all the value's relationships, and so goes to a blocking thread.
        let request = PathRequest {
            from: id("t:principle:p0"),
            to: id("t:principle:p1"),
            direction: traverse::TraceDirection::Both,
            max_depth: 2,
            via: Vec::new(),
            first: 10,
            audience: Audience::Everything,
        };
        let short = PathRequest { to: id("t:value:wide"), max_depth: 1, ..request.clone() };
        for (request, here) in [(short, true), (request, false)] {
            let (ran_on, found) =
                on_thread(&store, move |reader| futures::executor::block_on(traverse::paths(reader, &request))).await;
            assert_eq!(ran_on == std::thread::current().id(), here);
            assert_eq!(found.paths.len(), 1, "{:?}", found.paths);
        }

        // A walk that fails here fails as it would anywhere.
        let missing = store.trace(&upstream("t:value:none", 1)).await;
        assert!(matches!(missing, Err(Error::NotFound(_))), "{missing:?}");
    }

    #[tokio::test]
    async fn a_walk_within_a_budget_answers_as_a_walk_without_one_and_stops_one_row_short() {
        let dir = tempfile::tempdir().unwrap();
        let store = small_store(&dir).await;
        let request = upstream("t:value:v", 4);
        let trace = |reader: &mut read::Reader<'_>| futures::executor::block_on(traverse::trace(reader, &request));
        let mut conn = store.readers.get().unwrap();
        let whole = read::walk(&mut conn, None, trace).unwrap();
        // Without the cache of walks, and with it, filled by the first walk: what it holds
        // counts as rows read.
        for cache in [None, Some(&*store.walks)] {
            // The fewest rows the walk fits in: with one fewer it stops, with those it answers whole.
            let fits = (0..100)
                .find(|&rows| read::walk_within(&mut conn, cache, rows, trace).unwrap().is_some())
                .expect("a walk of two nodes fits in 100 rows");
            assert!(fits >= 3, "the start, its one relationship, the node at its end: {fits}");
            assert!(read::walk_within(&mut conn, cache, fits - 1, trace).unwrap().is_none());
            let within = read::walk_within(&mut conn, cache, fits, trace).unwrap().unwrap();
            let ids = |t: &Trace| t.nodes.iter().map(|(n, d)| format!("{} {d}", n.id)).collect::<Vec<_>>();
            assert_eq!(ids(&within), ids(&whole));
            assert_eq!(keys(&within.edges), keys(&whole.edges));
            // Stopping ends the read transaction like any other walk.
            assert!(conn.is_autocommit());
        }
        assert!(store.walks.len() >= 3, "the two nodes and their relationships were kept");

        // A store that keeps nothing reads every walk from the file, and answers alike.
        let nothing = SqliteStore::open_keeping(&dir.path().join("graph.db"), 0).unwrap();
        for _ in 0..2 {
            let again = nothing.trace(&request).await.unwrap();
            assert_eq!(keys(&again.edges), keys(&whole.edges));
        }
        assert_eq!(nothing.walks.len(), 0);
    }

    #[tokio::test]
    async fn a_node_read_with_its_relationships_answers_from_what_was_kept_until_anyone_changes_the_graph() {
        let dir = tempfile::tempdir().unwrap();
        let store = small_store(&dir).await;
        let other = elsewhere(&dir);
        let version = || graph_version(&other);
        // The value, the relationships into it and the nodes at their far ends, as one
        // organisation's members and another's see them.
        let read = |audience: &'static str| {
            let store = store.clone();
            async move {
                let audience = Audience::Member(audience.into());
                let read = store.visible_node_with_edges(&id("t:value:v"), &[Direction::In], &audience).await.unwrap();
                let read = read.unwrap();
                let mut found: Vec<String> = read.node.iter().map(|n| n.title.clone()).collect();
                let (_, edges, ends) = &read.edges[0];
                found.extend(edges.iter().map(|e| format!("{} {}", e.from, e.kind.as_str())));
                found.extend(ends.iter().map(|n| n.title.clone()));
                found
            }
        };
        let first = ["Value", "t:principle:p UPHOLDS", "Principle"];
        assert_eq!(read("t").await, first);

        // The next read takes the nodes from what the first kept: nodes put there under the
        // graph's version are what it answers.
        let mut kept = store.nodes(&[id("t:principle:p"), id("t:value:v")]).await.unwrap();
        for node in &mut kept {
            node.title = format!("Kept {}", node.title);
        }
        store.walks.keep_nodes(version(), &kept);
        assert_eq!(read("t").await, ["Kept Value", "t:principle:p UPHOLDS", "Kept Principle"]);
        // The relationships too, and the relationships lookups of a request read them alike.
        assert_eq!(store.walks.len(), 3, "the two nodes and the value's relationships in");
        let (edges, ends) =
            store.visible_edges_and_ends(&[id("t:value:v")], Direction::In, &Audience::Everything).await.unwrap();
        assert_eq!((edges.len(), ends[0].title.as_str()), (1, "Kept Principle"));

        // A change by another process is read at once: the principle renamed, then made private,
        // which its own organisation still sees and another does not, then its relationship gone.
        let changes = [
            "UPDATE nodes SET title = 'Renamed' WHERE id = 't:principle:p'",
            "UPDATE nodes SET visibility = 'PRIVATE' WHERE id = 't:principle:p'",
            "DELETE FROM edges WHERE src = 't:principle:p'",
        ];
        let mut seen = Vec::new();
        for sql in changes {
            other.execute_batch(sql).unwrap();
            seen.push((read("t").await, read("zz").await));
        }
        let words = |w: &[&str]| w.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let (renamed, value) = (words(&["Value", "t:principle:p UPHOLDS", "Renamed"]), words(&["Value"]));
        assert_eq!(seen, [(renamed.clone(), renamed.clone()), (renamed, value.clone()), (value.clone(), value)]);
    }

    #[tokio::test]
    async fn an_id_with_no_node_is_kept_as_such_until_anyone_changes_the_graph() {
        let dir = tempfile::tempdir().unwrap();
        let store = small_store(&dir).await;
        let other = elsewhere(&dir);
        let misses = || store.cache_figures().unwrap().misses;
        let read = |node: &'static str| {
            let store = store.clone();
            async move {
                let read =
                    store.visible_node_with_edges(&id(node), &[Direction::In], &Audience::Everything).await.unwrap();
                read.and_then(|r| {
                    let counts = (r.edges[0].1.len(), r.edges[0].2.len());
                    r.node.map(|n| (n.title, counts.0, counts.1))
                })
            }
        };

        // An id that is no node: looked up once, then known as none.
        assert_eq!(read("t:value:missing").await, None);
        let before = misses();
        assert_eq!(read("t:value:missing").await, None);
        assert_eq!(misses(), before, "the second lookup is answered from memory");

        // A relationship to a partner's node: its far end is no node here, and is not asked for
        // again either. The relationship itself is not shown, as without the cache.
        other
            .execute_batch(
                "INSERT INTO foreign_edges (local, outgoing, kind, foreign_id, owner, assertion, props)
                 VALUES ('t:value:v', 0, 'UPHOLDS', 'zz:principle:far', 'zz', 'INFERRED', '{}')",
            )
            .unwrap();
        assert_eq!(read("t:value:v").await, Some(("Value".to_string(), 1, 1)));
        let before = misses();
        assert_eq!(read("t:value:v").await, Some(("Value".to_string(), 1, 1)));
        assert_eq!(misses(), before, "the foreign end is known as no node");

        // Once another process makes the node, the next read finds it.
        other
            .execute_batch(
                "INSERT INTO nodes (id, kind, organisation, title, description, tags, visibility, assertion,
                                    created_at, updated_at, details)
                 SELECT 't:value:missing', kind, organisation, 'Found', description, tags, visibility, assertion,
                        created_at, updated_at, details FROM nodes WHERE id = 't:value:v'",
            )
            .unwrap();
        assert_eq!(read("t:value:missing").await, Some(("Found".to_string(), 0, 0)));
    }

    /// The graph as walks find it: the nodes a trace upstream from the value reaches, with their
    /// titles, and every relationship into the value, a foreign one too.
    async fn traced(store: &SqliteStore) -> Vec<String> {
        let trace = store.trace(&upstream("t:value:v", 4)).await.unwrap();
        let mut found: Vec<String> = trace.nodes.iter().map(|(n, _)| format!("{} {}", n.id, n.title)).collect();
        found.sort();
        let into = store
            .walk(|reader| {
                futures::executor::block_on(traverse::Neighbours::edges(reader, &[id("t:value:v")], Direction::In))
            })
            .await
            .unwrap();
        let assertions = into.iter().map(|e| format!("{} {}", e.from, e.assertion.as_str()));
        found.extend(assertions);
        found
    }

    /// The graph's version as a connection reads it.
    fn graph_version(conn: &Connection) -> i64 {
        conn.query_row("SELECT n FROM graph_version", [], |r| r.get(0)).unwrap()
    }

    /// Another connection to the file, as another process would open it.
    fn elsewhere(dir: &tempfile::TempDir) -> Connection {
        let conn = Connection::open(dir.path().join("graph.db")).unwrap();
        conn.execute_batch("PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;").unwrap();
        conn
    }

    #[tokio::test]
    async fn walks_answer_from_what_walks_read_until_anyone_changes_the_graph() {
        let dir = tempfile::tempdir().unwrap();
        let store = small_store(&dir).await;
        let other = elsewhere(&dir);
        let version = || graph_version(&other);
        let first = ["t:principle:p Principle", "t:value:v Value", "t:principle:p INFERRED"];
        assert_eq!(traced(&store).await, first);

        // The next walk takes the nodes from what the first one kept: a node put there under
        // the graph's version is what the walk answers.
        let mut kept = store.nodes(&[id("t:principle:p")]).await.unwrap().remove(0);
        kept.title = "As kept".into();
        store.walks.keep_nodes(version(), &[kept]);
        assert_eq!(traced(&store).await, ["t:principle:p As kept", "t:value:v Value", "t:principle:p INFERRED"]);

        // Each kind of change another process makes moves the version on, and the next walk
        // reads the graph as it now is.
        let changes = [
            "INSERT INTO nodes (id, kind, organisation, title, description, tags, visibility, assertion, created_at,
                                updated_at, details)
             SELECT 't:principle:q', kind, organisation, 'Another', description, tags, visibility, assertion,
                    created_at, updated_at, details FROM nodes WHERE id = 't:principle:p'",
            "INSERT INTO edges (src, kind, dst, assertion, props) VALUES ('t:principle:q', 'UPHOLDS', 't:value:v', 'SOURCED', '{}')",
            "UPDATE nodes SET title = 'Renamed' WHERE id = 't:principle:p'",
            "DELETE FROM edges WHERE src = 't:principle:p'",
            "INSERT INTO foreign_edges (local, outgoing, kind, foreign_id, owner, assertion, props)
             VALUES ('t:value:v', 0, 'UPHOLDS', 'zz:principle:far', 'zz', 'INFERRED', '{}')",
            "UPDATE foreign_edges SET assertion = 'SOURCED'",
            "DELETE FROM foreign_edges",
            "DELETE FROM nodes WHERE id = 't:principle:q'",
        ];
        let mut seen = vec![traced(&store).await];
        for sql in changes {
            let before = version();
            other.execute_batch(sql).unwrap();
            assert!(version() > before, "{sql} moved the version on");
            seen.push(traced(&store).await);
        }
        let (p, q, v) = ("t:principle:p Principle", "t:principle:q Another", "t:value:v Value");
        let renamed = "t:principle:p Renamed";
        let (from_p, from_q) = ("t:principle:p INFERRED", "t:principle:q SOURCED");
        let (far, far_sourced) = ("zz:principle:far INFERRED", "zz:principle:far SOURCED");
        let expected: [&[&str]; 9] = [
            &["t:principle:p As kept", v, from_p],
            &[p, v, from_p],
            &[p, q, v, from_p, from_q],
            &[renamed, q, v, from_p, from_q],
            &[q, v, from_q],
            &[q, v, from_q, far],
            &[q, v, from_q, far_sourced],
            &[q, v, from_q],
            &[v],
        ];
        assert_eq!(seen, expected.map(|s| s.iter().map(|x| x.to_string()).collect::<Vec<_>>()));
    }
}
