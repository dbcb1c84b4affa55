//! Writes: one change set in one IMMEDIATE transaction, committed only when
//! every change passed the shared rules in `store::apply`.

use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value as Json;

use super::read::{FOREIGN_EDGE_COLUMNS, NODE_COLUMNS, edge_from_row, node_from_row};
use crate::domain::{Actor, Applied, Change, Edge, Error, Node, NodeId, RelationshipKind, Result, timestamp};
mod loader;

use crate::store::{AuditEntry, ChangeBatches, ChangeSet, Failed, ForeignEnd, Writer, apply_changes, next_batch};
use loader::Loader;

pub(super) fn apply(
    conn: &mut Connection,
    changes: Vec<Change>,
    now: DateTime<Utc>,
    actor: Option<&Actor>,
) -> Result<Vec<Applied>, Failed> {
    // The writer's futures never wait: each step is a synchronous SQLite call.
    in_transaction(conn, |writer| futures::executor::block_on(apply_changes(writer, changes, now, actor)))
}

/// Applies a change set that arrives in batches, in one transaction. Into an
/// empty store, the secondary indexes and the full-text index are set aside and
/// built once at the end (still inside the transaction): building an index
/// from a whole table is much cheaper than keeping it up to date row by row.
///
/// Into an empty store, foreign keys are also off while the records go in: the
/// change-set rules already check that both ends of every relationship exist,
/// and `PRAGMA foreign_key_check` checks the whole graph once at the end, still
/// inside the transaction. (SQLite changes that setting only outside a
/// transaction, hence the look at the store before it begins.)
pub(super) fn import(conn: &mut Connection, batches: ChangeBatches, now: DateTime<Utc>) -> Result<usize, Failed> {
    let at_start = |error: Error| Failed { index: 0, error };
    let bulk = is_empty(conn).map_err(at_start)?;
    if bulk {
        foreign_keys(conn, false).map_err(at_start)?;
    }
    let outcome = import_in_transaction(conn, batches, now, bulk);
    let restored = if bulk { foreign_keys(conn, true) } else { Ok(()) };
    let applied = outcome?;
    restored.map_err(|error| Failed { index: applied.saturating_sub(1), error })?;
    Ok(applied)
}

fn foreign_keys(conn: &Connection, on: bool) -> Result<()> {
    conn.execute_batch(if on { "PRAGMA foreign_keys = ON" } else { "PRAGMA foreign_keys = OFF" }).map_err(db)
}

fn is_empty(conn: &Connection) -> Result<bool> {
    conn.query_row("SELECT NOT EXISTS (SELECT 1 FROM nodes)", [], |r| r.get(0)).map_err(db)
}

fn import_in_transaction(
    conn: &mut Connection,
    mut batches: ChangeBatches,
    now: DateTime<Utc>,
    unchecked_keys: bool,
) -> Result<usize, Failed> {
    in_transaction(conn, |writer| {
        let at_start = |error: Error| Failed { index: 0, error };
        let empty = is_empty(writer.tx).map_err(at_start)?;
        let set_aside = if empty { derived::set_aside(writer.tx).map_err(at_start)? } else { Vec::new() };
        let mut set = ChangeSet::new(now);
        {
            // Into an empty store, the loader answers the rules from what it wrote.
            let mut loader = empty.then(|| Loader::new(SqliteWriter { tx: &mut *writer.tx }));
            let changes: &mut dyn Writer = match &mut loader {
                Some(loader) => loader,
                None => &mut *writer,
            };
            while let Some(batch) = next_batch(batches.blocking_recv(), set.applied())? {
                // The writer's futures never wait: each step is a synchronous SQLite call.
                futures::executor::block_on(set.apply(changes, batch, |_| {}))?;
            }
        }
        let applied = set.applied();
        set.finish()?;
        let at_end = |error: Error| Failed { index: applied.saturating_sub(1), error };
        if unchecked_keys {
            check_foreign_keys(writer.tx).map_err(at_end)?;
        }
        derived::rebuild(writer.tx, &set_aside).map_err(at_end)?;
        Ok(applied)
    })
}

/// Fails if any relationship's end is missing, which the rules should have
/// made impossible: a second guard for an import written without foreign keys.
fn check_foreign_keys(tx: &Connection) -> Result<()> {
    let broken: Option<String> = tx.query_row("PRAGMA foreign_key_check", [], |r| r.get(0)).optional().map_err(db)?;
    match broken {
        None => Ok(()),
        Some(table) => Err(Error::internal(anyhow::anyhow!("the import left a row of {table} without its parent"))),
    }
}

/// Runs `work` in one IMMEDIATE transaction, committed only when it succeeds.
fn in_transaction<T>(
    conn: &mut Connection,
    work: impl FnOnce(&mut SqliteWriter) -> Result<T, Failed>,
) -> Result<T, Failed> {
    let fail = |error: Error| Failed { index: 0, error };
    // IMMEDIATE takes the write lock up front, so reads inside see a stable graph.
    conn.execute_batch("BEGIN IMMEDIATE").map_err(|e| fail(Error::internal(e)))?;
    let mut writer = SqliteWriter { tx: conn };
    let outcome = work(&mut writer)
        .and_then(|done| writer.tx.execute_batch("COMMIT").map(|()| done).map_err(|e| fail(Error::internal(e))));
    if outcome.is_err()
        && !writer.tx.is_autocommit()
        && let Err(e) = writer.tx.execute_batch("ROLLBACK")
    {
        tracing::error!(error = %e, "rolling back a failed change set failed");
    }
    outcome
}

/// What the store derives from its tables and can rebuild from them: the
/// secondary indexes and the full-text index.
mod derived {
    use rusqlite::Connection;

    use super::db;
    use crate::domain::Result;

    /// Drops the secondary indexes and the triggers that fill the full-text
    /// index, returning the statements that make them again. The statements come
    /// from the schema itself, so they stay those of the migrations.
    pub(super) fn set_aside(tx: &Connection) -> Result<Vec<(String, String)>> {
        let mut stmt = tx
            .prepare(
                "SELECT type, name, sql FROM sqlite_schema
                 WHERE sql IS NOT NULL AND tbl_name IN ('nodes', 'edges')
                   AND (type = 'index' OR (type = 'trigger' AND name LIKE 'node_words_%'))
                 ORDER BY type, name",
            )
            .map_err(db)?;
        let found = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?)))
            .map_err(db)?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(db)?;
        let mut remade = Vec::with_capacity(found.len());
        for (kind, name, sql) in found {
            // Names come from the schema, never from input.
            tx.execute_batch(&format!("DROP {} \"{}\"", kind.to_uppercase(), name.replace('"', "\"\""))).map_err(db)?;
            remade.push((kind, sql));
        }
        Ok(remade)
    }

    /// Fills the full-text index from the nodes as the `node_text` view spells
    /// them, then makes the indexes and triggers set aside again.
    pub(super) fn rebuild(tx: &Connection, set_aside: &[(String, String)]) -> Result<()> {
        if set_aside.is_empty() {
            return Ok(());
        }
        tx.execute_batch("INSERT INTO node_words (rowid, title, body) SELECT seq, title, body FROM node_text")
            .map_err(db)?;
        // The sorts that build the indexes may spread over the machine's cores meanwhile.
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
        tx.execute_batch(&format!("PRAGMA threads = {cores}")).map_err(db)?;
        let built = set_aside.iter().try_for_each(|(_, sql)| tx.execute_batch(sql).map_err(db));
        tx.execute_batch("PRAGMA threads = 0").map_err(db)?;
        built
    }
}

/// The open transaction: a connection between BEGIN and COMMIT or ROLLBACK.
struct SqliteWriter<'c> {
    tx: &'c mut Connection,
}

impl SqliteWriter<'_> {
    /// The relationships a statement of `src, kind, dst, assertion, props` selects.
    fn edges(&self, sql: &str, params: impl rusqlite::Params) -> Result<Vec<Edge>> {
        let mut stmt = self.tx.prepare_cached(sql).map_err(db)?;
        let mut rows = stmt.query(params).map_err(db)?;
        let mut edges = Vec::new();
        while let Some(row) = rows.next().map_err(db)? {
            edges.push(edge_from_row(row)?);
        }
        Ok(edges)
    }

    fn execute(&self, sql: &str, params: impl rusqlite::Params) -> Result<()> {
        self.tx.prepare_cached(sql).map_err(db)?.execute(params).map_err(db)?;
        Ok(())
    }
}

/// The key of a relationship with a foreign end, as `foreign_edges` spells it:
/// local end, whether it points out of it, kind, foreign end.
const FOREIGN_KEY: &str = "f.local = ?1 AND f.outgoing = ?2 AND f.kind = ?3 AND f.foreign_id = ?4";

fn db(e: rusqlite::Error) -> Error {
    Error::internal(e)
}

const INSERT_NODE: &str =
    "INSERT INTO nodes (id, kind, organisation, title, description, tags, visibility, assertion, created_at, updated_at, details)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";

const INSERT_EDGE: &str = "INSERT INTO edges (src, kind, dst, assertion, props) VALUES (?1, ?2, ?3, ?4, ?5)";

/// Runs an insert or update of a node's columns, in the order of `INSERT_NODE`.
fn write_node(stmt: &mut rusqlite::Statement<'_>, node: &Node) -> Result<()> {
    let tags = serde_json::to_string(&node.tags).map_err(Error::internal)?;
    let details = Json::Object(node.details.to_json()).to_string();
    let (created, updated) = (timestamp(node.created_at), timestamp(node.updated_at));
    stmt.execute(params![
        node.id.as_str(),
        node.kind().as_str(),
        node.organisation(),
        node.title,
        node.description,
        tags,
        node.visibility.as_str(),
        node.assertion.as_str(),
        created,
        updated,
        details,
    ])
    .map_err(db)?;
    Ok(())
}

/// What `props` holds of a relationship: its properties but the assertion, which has a column.
fn stored_props(edge: &Edge) -> String {
    let mut props = edge.properties();
    props.remove("assertion");
    Json::Object(props).to_string()
}

/// Runs `INSERT_EDGE` for a relationship between two nodes of this store.
fn write_edge(stmt: &mut rusqlite::Statement<'_>, edge: &Edge) -> Result<()> {
    let props = stored_props(edge);
    stmt.execute(params![edge.from.as_str(), edge.kind.as_str(), edge.to.as_str(), edge.assertion.as_str(), props])
        .map_err(db)?;
    Ok(())
}

#[async_trait::async_trait]
impl Writer for SqliteWriter<'_> {
    async fn node(&mut self, id: &NodeId) -> Result<Option<Node>> {
        let sql = format!("SELECT {NODE_COLUMNS} FROM nodes WHERE id = ?1");
        let mut stmt = self.tx.prepare_cached(&sql).map_err(db)?;
        let mut rows = stmt.query([id.as_str()]).map_err(db)?;
        match rows.next().map_err(db)? {
            Some(row) => node_from_row(row).map(Some),
            None => Ok(None),
        }
    }

    async fn exists(&mut self, id: &NodeId) -> Result<bool> {
        let mut stmt = self.tx.prepare_cached("SELECT EXISTS (SELECT 1 FROM nodes WHERE id = ?1)").map_err(db)?;
        stmt.query_row([id.as_str()], |r| r.get(0)).map_err(db)
    }

    async fn insert_node(&mut self, node: &Node) -> Result<()> {
        write_node(&mut *self.tx.prepare_cached(INSERT_NODE).map_err(db)?, node)
    }

    async fn replace_node(&mut self, node: &Node) -> Result<()> {
        let mut stmt = self
            .tx
            .prepare_cached(
                "UPDATE nodes SET kind = ?2, organisation = ?3, title = ?4, description = ?5, tags = ?6,
                 visibility = ?7, assertion = ?8, created_at = ?9, updated_at = ?10, details = ?11 WHERE id = ?1",
            )
            .map_err(db)?;
        write_node(&mut stmt, node)
    }

    async fn delete_node(&mut self, id: &NodeId) -> Result<Vec<Edge>> {
        let sql = format!(
            "SELECT src, kind, dst, assertion, props FROM edges WHERE src = ?1
             UNION ALL SELECT src, kind, dst, assertion, props FROM edges WHERE dst = ?1
             UNION ALL SELECT {FOREIGN_EDGE_COLUMNS} FROM foreign_edges f WHERE f.local = ?1"
        );
        let edges = self.edges(&sql, [id.as_str()])?;
        // Foreign keys cascade the node's relationships away with it, foreign ones too.
        self.tx.execute("DELETE FROM nodes WHERE id = ?1", [id.as_str()]).map_err(db)?;
        Ok(edges)
    }

    async fn edge(
        &mut self,
        from: &NodeId,
        kind: RelationshipKind,
        to: &NodeId,
        foreign: Option<ForeignEnd>,
    ) -> Result<Option<Edge>> {
        let found = match foreign {
            None => self.edges(
                "SELECT src, kind, dst, assertion, props FROM edges WHERE src = ?1 AND kind = ?2 AND dst = ?3",
                params![from.as_str(), kind.as_str(), to.as_str()],
            )?,
            Some(end) => {
                let (local, outgoing, far) = end.split(from, to);
                self.edges(
                    &format!("SELECT {FOREIGN_EDGE_COLUMNS} FROM foreign_edges f WHERE {FOREIGN_KEY}"),
                    params![local.as_str(), outgoing, kind.as_str(), far.as_str()],
                )?
            }
        };
        Ok(found.into_iter().next())
    }

    async fn insert_edge(&mut self, edge: &Edge, foreign: Option<ForeignEnd>) -> Result<()> {
        let Some(end) = foreign else {
            return write_edge(&mut *self.tx.prepare_cached(INSERT_EDGE).map_err(db)?, edge);
        };
        let (local, outgoing, far) = end.split(&edge.from, &edge.to);
        let (kind, assertion) = (edge.kind.as_str(), edge.assertion.as_str());
        self.execute(
            "INSERT INTO foreign_edges (local, outgoing, kind, foreign_id, owner, assertion, props)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![local.as_str(), outgoing, kind, far.as_str(), far.organisation(), assertion, stored_props(edge)],
        )
    }

    async fn delete_edge(
        &mut self,
        from: &NodeId,
        kind: RelationshipKind,
        to: &NodeId,
        foreign: Option<ForeignEnd>,
    ) -> Result<()> {
        match foreign {
            None => self.execute(
                "DELETE FROM edges WHERE src = ?1 AND kind = ?2 AND dst = ?3",
                params![from.as_str(), kind.as_str(), to.as_str()],
            ),
            Some(end) => {
                let (local, outgoing, far) = end.split(from, to);
                self.execute(
                    &format!("DELETE FROM foreign_edges AS f WHERE {FOREIGN_KEY}"),
                    params![local.as_str(), outgoing, kind.as_str(), far.as_str()],
                )
            }
        }
    }

    async fn earliest_influence(&mut self, learning: &NodeId) -> Result<Option<NaiveDate>> {
        let mut stmt = self
            .tx
            .prepare_cached(
                "SELECT min(json_extract(props, '$.on')) FROM (
                     SELECT props FROM edges WHERE src = ?1 AND kind = 'INFLUENCED'
                     UNION ALL SELECT props FROM foreign_edges WHERE local = ?1 AND outgoing = 1 AND kind = 'INFLUENCED')",
            )
            .map_err(db)?;
        let earliest: Option<String> =
            stmt.query_row([learning.as_str()], |r| r.get(0)).optional().map_err(db)?.flatten();
        earliest.map(|d| d.parse::<NaiveDate>().map_err(Error::internal)).transpose()
    }

    async fn influences_citing(&mut self, source: &NodeId) -> Result<u64> {
        let mut stmt = self
            .tx
            .prepare_cached(
                "SELECT count(*) FROM (
                     SELECT props FROM edges WHERE kind = 'INFLUENCED'
                     UNION ALL SELECT props FROM foreign_edges WHERE kind = 'INFLUENCED')
                 WHERE EXISTS (SELECT 1 FROM json_each(props, '$.sources') WHERE value = ?1)",
            )
            .map_err(db)?;
        let n: i64 = stmt.query_row([source.as_str()], |r| r.get(0)).map_err(db)?;
        Ok(n as u64)
    }

    async fn record_audit(&mut self, entry: &AuditEntry) -> Result<()> {
        super::access::record_audit(self.tx, entry)
    }
}
