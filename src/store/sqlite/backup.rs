//! Backups of the embedded store through SQLite's online backup API: a copy
//! taken in one read transaction is consistent even while a server writes
//! (WAL readers do not block writers), and a restore checks that the file
//! is a pvgraph database and that no server has the store open.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

use super::MIGRATIONS;

/// All pages in one step: one read transaction, so one moment's graph, never restarted by writes.
const ALL_PAGES: i32 = -1;
/// How often, 50 ms apart, to try again while the other side is locked.
const TRIES: u32 = 200;

/// Copies every page of `from` into `to` in one step, waiting while either is locked.
fn copy_all(from: &Connection, to: &mut Connection) -> anyhow::Result<()> {
    let backup = Backup::new(from, to)?;
    for _ in 0..TRIES {
        match backup.step(ALL_PAGES)? {
            StepResult::Done => return Ok(()),
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
    }
    bail!("the database stayed locked for {} s; try again", TRIES / 20)
}

/// What a backup or restore copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Copied {
    pub nodes: u64,
    pub relationships: u64,
}

fn counts(conn: &Connection) -> rusqlite::Result<Copied> {
    // Stores written before schema version 4 have no relationships with a foreign end.
    let foreign: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'foreign_edges')",
        [],
        |r| r.get(0),
    )?;
    let sql = match foreign {
        true => {
            "SELECT (SELECT count(*) FROM nodes), (SELECT count(*) FROM edges) + (SELECT count(*) FROM foreign_edges)"
        }
        false => "SELECT (SELECT count(*) FROM nodes), (SELECT count(*) FROM edges)",
    };
    conn.query_row(sql, [], |r| Ok(Copied { nodes: r.get(0)?, relationships: r.get(1)? }))
}

fn open_read_only(path: &Path) -> anyhow::Result<Connection> {
    if !path.is_file() {
        bail!("there is no database file at {}", path.display());
    }
    Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .with_context(|| format!("cannot open {}", path.display()))
}

/// Checks that `conn` holds a sound pvgraph database this version can open.
fn check_pvgraph(conn: &Connection, path: &Path) -> anyhow::Result<()> {
    let not_ours = || format!("{} is not a pvgraph database", path.display());
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).with_context(not_ours)?;
    let tables: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name IN ('nodes', 'edges', 'node_words')",
            [],
            |r| r.get(0),
        )
        .with_context(not_ours)?;
    if version < 1 || tables < 2 {
        bail!("{}: it has no pvgraph tables", not_ours());
    }
    if version as usize > MIGRATIONS.len() {
        bail!(
            "{} was written by a newer pvgraph (schema version {version}; this one knows up to {})",
            path.display(),
            MIGRATIONS.len()
        );
    }
    let check: String = conn.query_row("PRAGMA quick_check", [], |r| r.get(0))?;
    if check != "ok" {
        bail!("{} is damaged: {check}", path.display());
    }
    Ok(())
}

/// Copies the store at `db` into a new file `to`, consistently, while servers keep working on
/// it. The copy is written beside `to` and renamed into place once checked, so `to` is either
/// the whole backup or untouched.
pub fn backup(db: &Path, to: &Path) -> anyhow::Result<Copied> {
    let source = open_read_only(db)?;
    check_pvgraph(&source, db)?;
    let partial = partial_path(to);
    let _ = std::fs::remove_file(&partial);
    let mut copy = Connection::open(&partial).with_context(|| format!("cannot create {}", partial.display()))?;
    let copied = (|| {
        copy_all(&source, &mut copy)?;
        // One file, no write-ahead log beside it: a backup is something to move around.
        copy.pragma_update(None, "journal_mode", "DELETE")?;
        check_pvgraph(&copy, to)?;
        anyhow::Ok(counts(&copy)?)
    })();
    drop(copy);
    let copied = copied.inspect_err(|_| {
        let _ = std::fs::remove_file(&partial);
    })?;
    std::fs::File::open(&partial)?.sync_all()?;
    std::fs::rename(&partial, to).with_context(|| format!("cannot move the backup into {}", to.display()))?;
    Ok(copied)
}

fn partial_path(to: &Path) -> PathBuf {
    let mut name = to.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".partial");
    to.with_file_name(name)
}

/// Replaces the store at `db` with the backup `from`. Refused when `from` is not a pvgraph
/// database, and when a server (or anything else) has the store open: leaving WAL mode needs
/// the only connection, so a failed switch means someone else is there.
pub fn restore(from: &Path, db: &Path) -> anyhow::Result<Copied> {
    let source = open_read_only(from)?;
    check_pvgraph(&source, from)?;
    if let Some(dir) = db.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut target = Connection::open(db).with_context(|| format!("cannot open {}", db.display()))?;
    target.busy_timeout(Duration::ZERO)?;
    let mode: rusqlite::Result<String> =
        target.pragma_update_and_check(None, "journal_mode", "DELETE", |r| r.get::<_, String>(0));
    if !matches!(mode.as_deref().map(str::to_ascii_lowercase).as_deref(), Ok("delete")) {
        bail!("{} is in use (is a pvgraph server running on it?); stop the server before restoring", db.display());
    }
    copy_all(&source, &mut target)?;
    target.pragma_update(None, "journal_mode", "WAL")?;
    check_pvgraph(&target, db)?;
    Ok(counts(&target)?)
}
