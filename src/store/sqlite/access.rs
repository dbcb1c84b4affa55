//! API tokens and the audit trail in SQLite (tables of migration 3).

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::domain::{Error, Result, Role, timestamp};
use crate::store::{ApiToken, AuditEntry, AuditQuery};

fn db(e: rusqlite::Error) -> Error {
    Error::internal(e)
}

fn time(text: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text).map(|t| t.with_timezone(&Utc)).map_err(Error::internal)
}

fn role(text: &str) -> Result<Role> {
    Role::parse(text).ok_or_else(|| Error::internal(anyhow::anyhow!("a stored role is unknown: {text}")))
}

const TOKEN_COLUMNS: &str = "id, hash, organisation, role, created_at, revoked_at";

fn token_from_row(row: &Row<'_>) -> Result<ApiToken> {
    let text = |i: usize| row.get::<_, String>(i).map_err(db);
    let revoked: Option<String> = row.get(5).map_err(db)?;
    Ok(ApiToken {
        id: text(0)?,
        hash: text(1)?,
        organisation: text(2)?,
        role: role(&text(3)?)?,
        created_at: time(&text(4)?)?,
        revoked_at: revoked.as_deref().map(time).transpose()?,
    })
}

pub(super) fn save_token(conn: &Connection, token: &ApiToken) -> Result<()> {
    write_token(conn, "INSERT", token)
}

/// Writes a token with `verb`: `INSERT`, or `INSERT OR REPLACE` for a copy.
fn write_token(conn: &Connection, verb: &str, token: &ApiToken) -> Result<()> {
    conn.execute(
        &format!("{verb} INTO api_tokens ({TOKEN_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"),
        params![
            token.id,
            token.hash,
            token.organisation,
            token.role.as_str(),
            timestamp(token.created_at),
            token.revoked_at.map(timestamp)
        ],
    )
    .map_err(db)?;
    Ok(())
}

pub(super) fn revoke_token(conn: &Connection, id: &str, at: DateTime<Utc>) -> Result<bool> {
    let changed = conn
        .execute(
            "UPDATE api_tokens SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
            params![id, timestamp(at)],
        )
        .map_err(db)?;
    Ok(changed == 1)
}

pub(super) fn tokens(conn: &Connection) -> Result<Vec<ApiToken>> {
    let mut stmt =
        conn.prepare_cached(&format!("SELECT {TOKEN_COLUMNS} FROM api_tokens ORDER BY created_at, id")).map_err(db)?;
    let mut rows = stmt.query([]).map_err(db)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(db)? {
        out.push(token_from_row(row)?);
    }
    Ok(out)
}

pub(super) fn token_by_hash(conn: &Connection, hash: &str) -> Result<Option<ApiToken>> {
    let mut stmt =
        conn.prepare_cached(&format!("SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE hash = ?1")).map_err(db)?;
    let row = stmt.query_row([hash], |row| Ok(token_from_row(row))).optional().map_err(db)?;
    row.transpose()
}

pub(super) fn record_audit(conn: &Connection, entry: &AuditEntry) -> Result<()> {
    write_audit(
        conn,
        "INSERT INTO audit_log (id, at, organisation, role, subject, operation, changes)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        entry,
    )
}

/// Writes tokens and audit entries copied from another store in one transaction, each over any
/// with its id.
pub(super) fn restore(conn: &mut Connection, tokens: &[ApiToken], entries: &[AuditEntry]) -> Result<()> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(db)?;
    for token in tokens {
        write_token(&tx, "INSERT OR REPLACE", token)?;
    }
    for entry in entries {
        write_audit(
            &tx,
            "INSERT OR REPLACE INTO audit_log (id, at, organisation, role, subject, operation, changes)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            entry,
        )?;
    }
    tx.commit().map_err(db)
}

pub(super) fn audit_organisations(conn: &Connection) -> Result<Vec<String>> {
    let mut stmt =
        conn.prepare_cached("SELECT DISTINCT organisation FROM audit_log ORDER BY organisation").map_err(db)?;
    let rows = stmt.query_map([], |r| r.get(0)).map_err(db)?;
    rows.collect::<rusqlite::Result<_>>().map_err(db)
}

/// Writes an audit entry with `sql`, which names its seven columns in order.
fn write_audit(conn: &Connection, sql: &str, entry: &AuditEntry) -> Result<()> {
    let mut stmt = conn.prepare_cached(sql).map_err(db)?;
    stmt.execute(params![
        entry.id,
        timestamp(entry.at),
        entry.organisation,
        entry.role.as_str(),
        entry.subject,
        entry.operation,
        entry.changes.to_string()
    ])
    .map_err(db)?;
    Ok(())
}

pub(super) fn audit_log(conn: &Connection, query: &AuditQuery) -> Result<Vec<AuditEntry>> {
    let (key, id) = match &query.after {
        Some(p) => (Some(p.key.as_str()), Some(p.id.as_str())),
        None => (None, None),
    };
    let mut stmt = conn
        .prepare_cached(
            "SELECT id, at, organisation, role, subject, operation, changes FROM audit_log
             WHERE organisation = ?1 AND (?2 IS NULL OR (at, id) < (?2, ?3))
             ORDER BY at DESC, id DESC LIMIT ?4",
        )
        .map_err(db)?;
    let mut rows = stmt.query(params![query.organisation, key, id, query.limit as i64]).map_err(db)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(db)? {
        let text = |i: usize| row.get::<_, String>(i).map_err(db);
        out.push(AuditEntry {
            id: text(0)?,
            at: time(&text(1)?)?,
            organisation: text(2)?,
            role: role(&text(3)?)?,
            subject: text(4)?,
            operation: text(5)?,
            changes: serde_json::from_str(&text(6)?).map_err(Error::internal)?,
        });
    }
    Ok(out)
}

pub(super) fn audit_count(conn: &Connection, organisation: &str) -> Result<u64> {
    let n: i64 = conn
        .query_row("SELECT count(*) FROM audit_log WHERE organisation = ?1", [organisation], |r| r.get(0))
        .map_err(db)?;
    Ok(n as u64)
}
