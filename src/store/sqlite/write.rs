//! Writes: one change set in one IMMEDIATE transaction, committed only when
//! every change passed the shared rules in `store::apply`.

use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value as Json;

use super::read::{NODE_COLUMNS, edge_from_row, node_from_row};
use crate::domain::{Actor, Applied, Change, Edge, Error, Node, NodeId, RelationshipKind, Result, timestamp};
use crate::store::{AuditEntry, Failed, Writer, apply_changes};

pub(super) fn apply(
    conn: &mut Connection,
    changes: Vec<Change>,
    now: DateTime<Utc>,
    actor: Option<&Actor>,
) -> Result<Vec<Applied>, Failed> {
    let fail = |error: Error| Failed { index: 0, error };
    // IMMEDIATE takes the write lock up front, so reads inside see a stable graph.
    conn.execute_batch("BEGIN IMMEDIATE").map_err(|e| fail(Error::internal(e)))?;
    let mut writer = SqliteWriter { tx: conn };
    // The writer's futures never wait: each step is a synchronous SQLite call.
    let outcome = futures::executor::block_on(apply_changes(&mut writer, changes, now, actor))
        .and_then(|applied| writer.tx.execute_batch("COMMIT").map(|()| applied).map_err(|e| fail(Error::internal(e))));
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

fn db(e: rusqlite::Error) -> Error {
    Error::internal(e)
}

fn node_params(node: &Node) -> [rusqlite::types::Value; 11] {
    use rusqlite::types::Value::Text;
    [
        Text(node.id.to_string()),
        Text(node.kind().as_str().into()),
        Text(node.organisation().into()),
        Text(node.title.clone()),
        Text(node.description.clone()),
        Text(Json::from(node.tags.clone()).to_string()),
        Text(node.visibility.as_str().into()),
        Text(node.assertion.as_str().into()),
        Text(timestamp(node.created_at)),
        Text(timestamp(node.updated_at)),
        Text(Json::Object(node.details.to_json()).to_string()),
    ]
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
        let mut stmt = self
            .tx
            .prepare_cached(
                "INSERT INTO nodes (id, kind, organisation, title, description, tags, visibility, assertion, created_at, updated_at, details)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )
            .map_err(db)?;
        stmt.execute(rusqlite::params_from_iter(node_params(node))).map_err(db)?;
        Ok(())
    }

    async fn replace_node(&mut self, node: &Node) -> Result<()> {
        let mut stmt = self
            .tx
            .prepare_cached(
                "UPDATE nodes SET kind = ?2, organisation = ?3, title = ?4, description = ?5, tags = ?6,
                 visibility = ?7, assertion = ?8, created_at = ?9, updated_at = ?10, details = ?11 WHERE id = ?1",
            )
            .map_err(db)?;
        stmt.execute(rusqlite::params_from_iter(node_params(node))).map_err(db)?;
        Ok(())
    }

    async fn delete_node(&mut self, id: &NodeId) -> Result<Vec<Edge>> {
        let mut edges = Vec::new();
        {
            let mut stmt = self
                .tx
                .prepare_cached(
                    "SELECT src, kind, dst, assertion, props FROM edges WHERE src = ?1
                     UNION ALL SELECT src, kind, dst, assertion, props FROM edges WHERE dst = ?1",
                )
                .map_err(db)?;
            let mut rows = stmt.query([id.as_str()]).map_err(db)?;
            while let Some(row) = rows.next().map_err(db)? {
                edges.push(edge_from_row(row)?);
            }
        }
        // Foreign keys cascade the node's relationships away with it.
        self.tx.execute("DELETE FROM nodes WHERE id = ?1", [id.as_str()]).map_err(db)?;
        Ok(edges)
    }

    async fn edge(&mut self, from: &NodeId, kind: RelationshipKind, to: &NodeId) -> Result<Option<Edge>> {
        let mut stmt = self
            .tx
            .prepare_cached(
                "SELECT src, kind, dst, assertion, props FROM edges WHERE src = ?1 AND kind = ?2 AND dst = ?3",
            )
            .map_err(db)?;
        let mut rows = stmt.query(params![from.as_str(), kind.as_str(), to.as_str()]).map_err(db)?;
        match rows.next().map_err(db)? {
            Some(row) => edge_from_row(row).map(Some),
            None => Ok(None),
        }
    }

    async fn insert_edge(&mut self, edge: &Edge) -> Result<()> {
        let mut props = edge.properties();
        props.remove("assertion");
        let mut stmt = self
            .tx
            .prepare_cached("INSERT INTO edges (src, kind, dst, assertion, props) VALUES (?1, ?2, ?3, ?4, ?5)")
            .map_err(db)?;
        stmt.execute(params![
            edge.from.as_str(),
            edge.kind.as_str(),
            edge.to.as_str(),
            edge.assertion.as_str(),
            Json::Object(props).to_string()
        ])
        .map_err(db)?;
        Ok(())
    }

    async fn delete_edge(&mut self, from: &NodeId, kind: RelationshipKind, to: &NodeId) -> Result<()> {
        let mut stmt =
            self.tx.prepare_cached("DELETE FROM edges WHERE src = ?1 AND kind = ?2 AND dst = ?3").map_err(db)?;
        stmt.execute(params![from.as_str(), kind.as_str(), to.as_str()]).map_err(db)?;
        Ok(())
    }

    async fn earliest_influence(&mut self, learning: &NodeId) -> Result<Option<NaiveDate>> {
        let mut stmt = self
            .tx
            .prepare_cached("SELECT min(json_extract(props, '$.on')) FROM edges WHERE src = ?1 AND kind = 'INFLUENCED'")
            .map_err(db)?;
        let earliest: Option<String> =
            stmt.query_row([learning.as_str()], |r| r.get(0)).optional().map_err(db)?.flatten();
        earliest.map(|d| d.parse::<NaiveDate>().map_err(Error::internal)).transpose()
    }

    async fn influences_citing(&mut self, source: &NodeId) -> Result<u64> {
        let mut stmt = self
            .tx
            .prepare_cached(
                "SELECT count(*) FROM edges WHERE kind = 'INFLUENCED'
                 AND EXISTS (SELECT 1 FROM json_each(props, '$.sources') WHERE value = ?1)",
            )
            .map_err(db)?;
        let n: i64 = stmt.query_row([source.as_str()], |r| r.get(0)).map_err(db)?;
        Ok(n as u64)
    }

    async fn record_audit(&mut self, entry: &AuditEntry) -> Result<()> {
        super::access::record_audit(self.tx, entry)
    }
}
