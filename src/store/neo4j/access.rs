//! API tokens and the audit trail in Neo4j: `(:ApiToken)` and `(:AuditEntry)`
//! nodes, without the `:Node` label, so that no graph read ever sees them.
//! Constraints and indexes: `schema/neo4j/4-access.cypher`.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use neo4rs::{BoltType, Query, Row};
use serde::Deserialize;

use super::read::corrupt;
use crate::domain::{Result, Role, timestamp};
use crate::store::{ApiToken, AuditEntry, AuditQuery};

const TOKEN_MAP: &str = "{.id, .hash, .organisation, .role, .createdAt, .revokedAt}";

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TokenRow {
    id: String,
    hash: String,
    organisation: String,
    role: String,
    created_at: String,
    revoked_at: Option<String>,
}

fn time(text: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text).map(|t| t.with_timezone(&Utc)).map_err(corrupt)
}

fn role(text: &str) -> Result<Role> {
    Role::parse(text).ok_or_else(|| corrupt(format!("unknown role {text}")))
}

pub(super) fn save_token_query(token: &ApiToken) -> Query {
    neo4rs::query("CREATE (t:ApiToken) SET t = $token").param("token", token_properties(token))
}

/// The properties a token is stored with (no `revokedAt` while it stands).
fn token_properties(token: &ApiToken) -> BoltType {
    let mut map = HashMap::from([
        ("id", BoltType::from(token.id.as_str())),
        ("hash", token.hash.as_str().into()),
        ("organisation", token.organisation.as_str().into()),
        ("role", token.role.as_str().into()),
        ("createdAt", timestamp(token.created_at).into()),
    ]);
    if let Some(at) = token.revoked_at {
        map.insert("revokedAt", timestamp(at).into());
    }
    map.into()
}

/// Writes tokens and audit entries copied from another store, each over any with its id, in
/// one statement.
pub(super) fn restore_query(tokens: &[ApiToken], entries: &[AuditEntry]) -> Query {
    neo4rs::query(
        "CALL () { UNWIND $tokens AS t MERGE (token:ApiToken {id: t.id}) SET token = t }
         CALL () { UNWIND $entries AS e MERGE (entry:AuditEntry {id: e.id}) SET entry = e }
         RETURN true AS done",
    )
    .param("tokens", tokens.iter().map(token_properties).collect::<Vec<_>>())
    .param("entries", entries.iter().map(audit_properties).collect::<Vec<_>>())
}

pub(super) fn audit_organisations_query() -> Query {
    neo4rs::query("MATCH (a:AuditEntry) RETURN DISTINCT a.organisation AS organisation ORDER BY organisation")
}

pub(super) fn revoke_token_query(id: &str, at: DateTime<Utc>) -> Query {
    neo4rs::query(
        "MATCH (t:ApiToken {id: $id}) WHERE t.revokedAt IS NULL SET t.revokedAt = $at RETURN count(t) AS revoked",
    )
    .param("id", id)
    .param("at", timestamp(at))
}

pub(super) fn tokens_query() -> Query {
    neo4rs::query(&format!("MATCH (t:ApiToken) WITH t ORDER BY t.createdAt, t.id RETURN t{TOKEN_MAP} AS token"))
}

pub(super) fn token_by_hash_query(hash: &str) -> Query {
    neo4rs::query(&format!("MATCH (t:ApiToken {{hash: $hash}}) RETURN t{TOKEN_MAP} AS token")).param("hash", hash)
}

pub(super) fn tokens(rows: &[Row]) -> Result<Vec<ApiToken>> {
    rows.iter()
        .map(|row| {
            let t: TokenRow = row.get("token").map_err(corrupt)?;
            Ok(ApiToken {
                role: role(&t.role)?,
                created_at: time(&t.created_at)?,
                revoked_at: t.revoked_at.as_deref().map(time).transpose()?,
                id: t.id,
                hash: t.hash,
                organisation: t.organisation,
            })
        })
        .collect()
}

/// The properties an audit entry is stored with, as one map, so that a change set's last
/// statement can write the entry beside its last changes (see `write.rs`).
pub(super) fn audit_properties(entry: &AuditEntry) -> BoltType {
    HashMap::from([
        ("id", BoltType::from(entry.id.as_str())),
        ("at", timestamp(entry.at).into()),
        ("organisation", entry.organisation.as_str().into()),
        ("role", entry.role.as_str().into()),
        ("subject", entry.subject.as_str().into()),
        ("operation", entry.operation.as_str().into()),
        ("changes", entry.changes.to_string().into()),
    ])
    .into()
}

pub(super) fn audit_log_query(query: &AuditQuery) -> Query {
    neo4rs::query(
        "MATCH (a:AuditEntry {organisation: $organisation})
         WHERE $key IS NULL OR a.at < $key OR (a.at = $key AND a.id < $id)
         WITH a ORDER BY a.at DESC, a.id DESC LIMIT $limit
         RETURN a{.id, .at, .organisation, .role, .subject, .operation, .changes} AS entry",
    )
    .param("organisation", query.organisation.as_str())
    .param("key", query.after.as_ref().map(|p| p.key.clone()))
    .param("id", query.after.as_ref().map(|p| p.id.clone()))
    .param("limit", query.limit as i64)
}

#[derive(Deserialize)]
struct EntryRow {
    id: String,
    at: String,
    organisation: String,
    role: String,
    subject: String,
    operation: String,
    changes: String,
}

pub(super) fn audit_entries(rows: &[Row]) -> Result<Vec<AuditEntry>> {
    rows.iter()
        .map(|row| {
            let e: EntryRow = row.get("entry").map_err(corrupt)?;
            Ok(AuditEntry {
                at: time(&e.at)?,
                role: role(&e.role)?,
                changes: serde_json::from_str(&e.changes).map_err(corrupt)?,
                id: e.id,
                organisation: e.organisation,
                subject: e.subject,
                operation: e.operation,
            })
        })
        .collect()
}

pub(super) fn audit_count_query(organisation: &str) -> Query {
    neo4rs::query("MATCH (a:AuditEntry {organisation: $organisation}) RETURN count(a) AS count")
        .param("organisation", organisation)
}
