//! Imports: a change set that arrives in batches, applied in one transaction.
//! Into a store that holds a graph, record by record like any change set.
//! Into an empty store, in bulk: the rules are answered from memory by the
//! loader, the rows are written on a thread of their own, and what the store
//! derives from its tables (secondary indexes, the full-text index) is set
//! aside and built from the whole tables instead of row by row, with a
//! rollback journal rather than the write-ahead log. `RUST_LOG=pvgraph=debug`
//! times each phase (`import_rows`, `import_foreign_key_check`,
//! `import_full_text`, `import_indexes`, `commit`).

use std::sync::mpsc::sync_channel;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension};

use super::loader::Loader;
use super::{SqliteWriter, db, in_transaction, rows};
use crate::domain::{Error, Result};
use crate::store::{ChangeBatches, ChangeSet, Failed, next_batch};

/// How many batches of rows the rules may run ahead of the writer's thread.
const ROWS_AHEAD: usize = 8;

/// Applies a change set that arrives in batches, in one transaction.
///
/// Into an empty store, the import writes in bulk with the settings of `Bulk`:
/// foreign keys off while the records go in (the change-set rules already check
/// that both ends of every relationship exist, and the whole graph is checked
/// once at the end, still inside the transaction), and a rollback journal
/// instead of the write-ahead log when no other connection has the file open.
/// (SQLite changes both settings only outside a transaction, hence the look at
/// the store before it begins.)
pub(in crate::store::sqlite) fn import(
    conn: &mut Connection,
    batches: ChangeBatches,
    now: DateTime<Utc>,
) -> Result<usize, Failed> {
    let at_start = |error: Error| Failed { index: 0, error };
    let bulk = match is_empty(conn).map_err(at_start)? {
        true => Some(Bulk::enter(conn).map_err(at_start)?),
        false => None,
    };
    let outcome = in_transaction(conn, |writer| {
        let at_start = |error: Error| Failed { index: 0, error };
        // Checked again inside the transaction, which another writer cannot enter.
        if bulk.is_some() && is_empty(writer.tx).map_err(at_start)? {
            return in_bulk(writer.tx, batches, now);
        }
        let applied = record_by_record(writer, batches, now)?;
        if bulk.is_some() {
            check_foreign_keys(writer.tx).map_err(|error| Failed { index: applied.saturating_sub(1), error })?;
        }
        Ok(applied)
    });
    let restored = bulk.map_or(Ok(()), |bulk| bulk.leave(conn));
    let applied = outcome?;
    restored.map_err(|error| Failed { index: applied.saturating_sub(1), error })?;
    Ok(applied)
}

/// The connection's settings while it imports into an empty store, and how to
/// put them back.
struct Bulk {
    /// Whether the import writes with a rollback journal rather than the write-ahead log.
    rollback_journal: bool,
}

impl Bulk {
    /// Foreign keys off and, when this connection is alone on the file, a
    /// rollback journal. In write-ahead-log mode every page of the new graph is
    /// written twice (into the log, then by the commit's checkpoint into the
    /// database), and a page the cache spills is logged again each time it
    /// changes. A rollback journal keeps only the pages the file held before the
    /// transaction, which in an empty store are a few: the new pages are written
    /// once, in place, and a failed or interrupted import is still rolled back to
    /// the empty store (an interrupted one at the next open).
    fn enter(conn: &Connection) -> Result<Bulk> {
        foreign_keys(conn, false)?;
        Ok(Bulk { rollback_journal: journal_mode(conn, "DELETE") == "delete" })
    }

    /// Puts the settings back, whether the import succeeded or not.
    fn leave(self, conn: &Connection) -> Result<()> {
        let journal = match self.rollback_journal && journal_mode(conn, "WAL") != "wal" {
            // The next connection to open the file switches it back.
            true => Err(Error::internal(anyhow::anyhow!("the store did not return to write-ahead-log mode"))),
            false => Ok(()),
        };
        foreign_keys(conn, true).and(journal)
    }
}

/// Switches the journal mode, without waiting for other connections' locks,
/// and returns the mode the file is in afterwards (lower case).
fn journal_mode(conn: &Connection, mode: &str) -> String {
    let wait = std::time::Duration::from_millis(super::super::BUSY_TIMEOUT_MS);
    let switched = conn
        .busy_timeout(std::time::Duration::ZERO)
        .and_then(|()| conn.query_row(&format!("PRAGMA journal_mode = {mode}"), [], |r| r.get::<_, String>(0)));
    if let Err(e) = conn.busy_timeout(wait) {
        tracing::warn!(error = %e, "restoring the busy timeout failed");
    }
    match switched {
        Ok(now) => now.to_ascii_lowercase(),
        Err(e) => {
            tracing::debug!(error = %e, mode, "the journal mode stays");
            conn.query_row("PRAGMA journal_mode", [], |r| r.get::<_, String>(0))
                .map(|m| m.to_ascii_lowercase())
                .unwrap_or_default()
        }
    }
}

fn foreign_keys(conn: &Connection, on: bool) -> Result<()> {
    conn.execute_batch(if on { "PRAGMA foreign_keys = ON" } else { "PRAGMA foreign_keys = OFF" }).map_err(db)
}

fn is_empty(conn: &Connection) -> Result<bool> {
    conn.query_row("SELECT NOT EXISTS (SELECT 1 FROM nodes)", [], |r| r.get(0)).map_err(db)
}

/// Applies the batches through `writer`, each change checked against the stored graph.
fn record_by_record(
    writer: &mut SqliteWriter,
    mut batches: ChangeBatches,
    now: DateTime<Utc>,
) -> Result<usize, Failed> {
    let mut set = ChangeSet::new(now);
    while let Some(batch) = next_batch(batches.blocking_recv(), set.applied())? {
        // The writer's futures never wait: each step is a synchronous SQLite call.
        futures::executor::block_on(set.apply(writer, batch, |_| {}))?;
    }
    let applied = set.applied();
    set.finish()?;
    Ok(applied)
}

/// Applies the batches into an empty store, inside its open transaction: the
/// rules run here, the rows are written on a second thread meanwhile.
fn in_bulk(tx: &mut Connection, batches: ChangeBatches, now: DateTime<Utc>) -> Result<usize, Failed> {
    let set_aside = derived::set_aside(tx).map_err(|error| Failed { index: 0, error })?;
    let (applied, ()) = tracing::debug_span!("import_rows").in_scope(|| {
        std::thread::scope(|scope| {
            let (jobs, received) = sync_channel(ROWS_AHEAD);
            let writer = scope.spawn(|| rows::write(tx, received));
            let ruled = apply_in_bulk(Loader::new(jobs), batches, now);
            let written = writer.join().unwrap_or_else(|_| {
                Err(Failed { index: 0, error: Error::internal(anyhow::anyhow!("the import's writer panicked")) })
            });
            first_failure(ruled, written)
        })
    })?;
    let at_end = |error: Error| Failed { index: applied.saturating_sub(1), error };
    tracing::debug_span!("import_foreign_key_check").in_scope(|| check_foreign_keys(tx)).map_err(at_end)?;
    derived::rebuild(tx, &set_aside).map_err(at_end)?;
    Ok(applied)
}

/// Runs the rules over the batches, the loader handing the rows on. The loader
/// goes when this ends, and the writer's thread with it once it wrote them.
fn apply_in_bulk(mut loader: Loader, mut batches: ChangeBatches, now: DateTime<Utc>) -> Result<usize, Failed> {
    let mut set = ChangeSet::new(now);
    while let Some(batch) = next_batch(batches.blocking_recv(), set.applied())? {
        for change in batch {
            // Each change on its own, so that its rows carry its index.
            loader.at(set.applied());
            // The loader's futures never wait: it answers from memory or from the writer's thread.
            futures::executor::block_on(set.apply(&mut loader, vec![change], |_| {}))?;
        }
    }
    let applied = set.applied();
    loader.flush().map_err(|error| Failed { index: applied.saturating_sub(1), error })?;
    set.finish()?;
    Ok(applied)
}

/// The outcome of an import whose rules and rows ran side by side: the first
/// change that failed, on either side. (A rule that fails because the writer's
/// thread stopped comes after the row that stopped it.)
fn first_failure<T, U>(ruled: Result<T, Failed>, written: Result<U, Failed>) -> Result<(T, U), Failed> {
    match (ruled, written) {
        (Ok(ruled), Ok(written)) => Ok((ruled, written)),
        (Err(failed), Ok(_)) | (Ok(_), Err(failed)) => Err(failed),
        (Err(rule), Err(row)) => Err(if row.index <= rule.index { row } else { rule }),
    }
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

/// What the store derives from its tables and can rebuild from them: the
/// secondary indexes, the full-text index, and the graph's version number.
mod derived {
    use rusqlite::Connection;

    use super::db;
    use crate::domain::Result;

    /// An index, or a trigger that fills the full-text index or moves the graph's version on,
    /// set aside.
    pub(super) struct Object {
        kind: String,
        name: String,
        /// The statement that makes it again.
        sql: String,
    }

    /// Drops the secondary indexes, the triggers that fill the full-text
    /// index and those that move the graph's version on at every row, returning
    /// them. The statements that make them again come from the schema itself, so
    /// they stay those of the migrations.
    pub(super) fn set_aside(tx: &Connection) -> Result<Vec<Object>> {
        let mut stmt = tx
            .prepare(
                "SELECT type, name, sql FROM sqlite_schema
                 WHERE sql IS NOT NULL AND tbl_name IN ('nodes', 'edges', 'foreign_edges')
                   AND ((type = 'index' AND tbl_name <> 'foreign_edges')
                     OR (type = 'trigger' AND (name LIKE 'node_words_%' OR name LIKE 'graph_version_%')))
                 ORDER BY type, name",
            )
            .map_err(db)?;
        let found = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(db)?
            .collect::<rusqlite::Result<Vec<(String, String, String)>>>()
            .map_err(db)?;
        let mut set_aside = Vec::with_capacity(found.len());
        for (kind, name, sql) in found {
            // Names come from the schema, never from input.
            tx.execute_batch(&format!("DROP {} \"{}\"", kind.to_uppercase(), name.replace('"', "\"\""))).map_err(db)?;
            set_aside.push(Object { kind, name, sql });
        }
        Ok(set_aside)
    }

    /// Makes the objects set aside again. With the triggers of the full-text
    /// index, fills it first from the nodes as the `node_text` view spells them;
    /// with those of the graph's version, moves it on once for the whole import.
    /// Building an index from a whole table is much cheaper than keeping it up
    /// to date row by row.
    pub(super) fn rebuild(tx: &Connection, set_aside: &[Object]) -> Result<()> {
        if set_aside.is_empty() {
            return Ok(());
        }
        let trigger = |prefix: &str| set_aside.iter().any(|o| o.kind == "trigger" && o.name.starts_with(prefix));
        if trigger("graph_version_") {
            tx.execute_batch("UPDATE graph_version SET n = n + 1").map_err(db)?;
        }
        if trigger("node_words_") {
            let _span = tracing::debug_span!("import_full_text").entered();
            tx.execute_batch("INSERT INTO node_words (rowid, title, body) SELECT seq, title, body FROM node_text")
                .map_err(db)?;
        }
        let _span = tracing::debug_span!("import_indexes").entered();
        // The sorts that build the indexes may spread over the machine's cores meanwhile.
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
        tx.execute_batch(&format!("PRAGMA threads = {cores}")).map_err(db)?;
        let built = set_aside.iter().try_for_each(|object| tx.execute_batch(&object.sql).map_err(db));
        tx.execute_batch("PRAGMA threads = 0").map_err(db)?;
        built
    }
}
