//! Writes: one change set in one IMMEDIATE transaction, committed only when
//! every change passed the shared rules in `store::apply`.

use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::read::{FOREIGN_EDGE_COLUMNS, NODE_COLUMNS, edge_from_row, node_from_row};
use crate::domain::{Actor, Applied, Change, Edge, Error, Node, NodeId, RelationshipKind, Result};
use crate::store::{AuditEntry, Failed, ForeignEnd, Writer, apply_changes};
use rows::{EdgeRow, NodeRow};

mod import;
mod loader;
mod rows;

pub(super) use import::import;

pub(super) fn apply(
    conn: &mut Connection,
    changes: Vec<Change>,
    now: DateTime<Utc>,
    actor: Option<&Actor>,
) -> Result<Vec<Applied>, Failed> {
    // The writer's futures never wait: each step is a synchronous SQLite call.
    in_transaction(conn, |writer| futures::executor::block_on(apply_changes(writer, changes, now, actor)))
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
    let outcome = work(&mut writer).and_then(|done| {
        let _span = tracing::debug_span!("commit").entered();
        writer.tx.execute_batch("COMMIT").map(|()| done).map_err(|e| fail(Error::internal(e)))
    });
    if outcome.is_err()
        && !writer.tx.is_autocommit()
        && let Err(e) = writer.tx.execute_batch("ROLLBACK")
    {
        tracing::error!(error = %e, "rolling back a failed change set failed");
    }
    outcome
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

const INSERT_FOREIGN_EDGE: &str =
    "INSERT INTO foreign_edges (local, outgoing, kind, foreign_id, owner, assertion, props)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";

impl SqliteWriter<'_> {
    /// Writes a node's row over the stored one of the same id.
    fn replace_row(&mut self, row: &NodeRow) -> Result<()> {
        let mut stmt = self
            .tx
            .prepare_cached(
                "UPDATE nodes SET kind = ?2, organisation = ?3, title = ?4, description = ?5, tags = ?6,
                 visibility = ?7, assertion = ?8, created_at = ?9, updated_at = ?10, details = ?11 WHERE id = ?1",
            )
            .map_err(db)?;
        row.write(&mut stmt)
    }
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
        NodeRow::of(node)?.write(&mut *self.tx.prepare_cached(INSERT_NODE).map_err(db)?)
    }

    async fn replace_node(&mut self, node: &Node) -> Result<()> {
        self.replace_row(&NodeRow::of(node)?)
    }

    async fn delete_node(&mut self, id: &NodeId) -> Result<Vec<Edge>> {
        let sql = format!(
            "SELECT src, kind, dst, assertion, props FROM edges WHERE src = ?1
             UNION ALL SELECT src, kind, dst, assertion, props FROM edges WHERE dst = ?1
             UNION ALL SELECT {FOREIGN_EDGE_COLUMNS} FROM foreign_edges f WHERE f.local = ?1"
        );
        let edges = self.edges(&sql, [id.as_str()])?;
        // Its relationships go first, foreign ones too. Foreign keys would cascade them away with
        // it, but an import into an empty store writes with foreign keys off.
        self.execute("DELETE FROM edges WHERE src = ?1 OR dst = ?1", [id.as_str()])?;
        self.execute("DELETE FROM foreign_edges WHERE local = ?1", [id.as_str()])?;
        self.execute("DELETE FROM nodes WHERE id = ?1", [id.as_str()])?;
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
        let sql = if foreign.is_some() { INSERT_FOREIGN_EDGE } else { INSERT_EDGE };
        EdgeRow::of(edge, foreign).write(&mut *self.tx.prepare_cached(sql).map_err(db)?)
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

    async fn has_foreign_ends_of(&mut self, organisation: &str) -> Result<bool> {
        let mut stmt =
            self.tx.prepare_cached("SELECT EXISTS (SELECT 1 FROM foreign_edges WHERE owner = ?1)").map_err(db)?;
        stmt.query_row([organisation], |r| r.get(0)).map_err(db)
    }

    async fn record_audit(&mut self, entry: &AuditEntry) -> Result<()> {
        super::access::record_audit(self.tx, entry)
    }
}
