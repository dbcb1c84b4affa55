//! What the stores keep about access, beside the graph: API tokens (only their
//! hashes) and the audit trail of changes made through the API.

use chrono::{DateTime, Utc};

use crate::domain::Role;

use super::Position;

/// An API token as stored: never the token itself, only its SHA-256.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiToken {
    /// The public part of the token, shown in lists and used to revoke it.
    pub id: String,
    /// Lower-case hex SHA-256 of the whole token.
    pub hash: String,
    pub organisation: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// One change set made through the API.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditEntry {
    pub id: String,
    pub at: DateTime<Utc>,
    /// The caller's organisation, which owns every node the change set changed.
    pub organisation: String,
    pub role: Role,
    /// `token:<id>` or `jwt:<subject>`.
    pub subject: String,
    /// The API operation, e.g. `updatePrinciple`.
    pub operation: String,
    /// What changed: one object per change, with the node or relationship before and after.
    pub changes: serde_json::Value,
}

impl Position {
    /// An audit entry's place in its trail, for the page after it.
    pub fn of_audit(entry: &AuditEntry) -> Position {
        Position { key: crate::domain::timestamp(entry.at), id: entry.id.clone() }
    }
}

/// A page of one organisation's audit trail, newest first.
#[derive(Clone, Debug)]
pub struct AuditQuery {
    pub organisation: String,
    /// Only entries older than this (time stamp, id).
    pub after: Option<Position>,
    pub limit: usize,
}
