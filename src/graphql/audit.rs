//! Who the caller is (`viewer`) and, for admins, the audit trail of their
//! organisation's changes (`auditLog`), newest first, as a Relay connection.

use async_graphql::connection::{Connection, Edge};
use async_graphql::{Context, Enum, Object, Result, SimpleObject};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};

use crate::domain::{Caller, Error, Role};
use crate::store::{AuditEntry, AuditQuery, Position, Store};

use super::error::{bad_input, to_gql};

const DEFAULT_PAGE: i32 = 20;
const MAX_PAGE: i32 = 100;

/// What a caller may do within its organisation.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "Role")]
pub enum RoleWord {
    Viewer,
    Editor,
    Admin,
}

impl From<Role> for RoleWord {
    fn from(role: Role) -> RoleWord {
        match role {
            Role::Viewer => RoleWord::Viewer,
            Role::Editor => RoleWord::Editor,
            Role::Admin => RoleWord::Admin,
        }
    }
}

/// The caller of this request, as the server authenticated it.
#[derive(SimpleObject)]
pub struct Viewer {
    /// True without a token: only PUBLIC nodes are visible, and nothing can be changed.
    anonymous: bool,
    /// The caller's organisation slug.
    organisation: Option<String>,
    role: Option<RoleWord>,
    /// `token:<id>` for an API token, `jwt:<sub>` for a JWT.
    subject: Option<String>,
}

/// One change set made through the API.
pub struct AuditEntryObject(AuditEntry);

#[Object(name = "AuditEntry")]
impl AuditEntryObject {
    async fn id(&self) -> &str {
        &self.0.id
    }

    /// When the change set was committed.
    async fn at(&self) -> DateTime<Utc> {
        self.0.at
    }

    /// The organisation of the caller, which owns every node changed.
    async fn organisation(&self) -> &str {
        &self.0.organisation
    }

    async fn role(&self) -> RoleWord {
        self.0.role.into()
    }

    /// Who: `token:<id>` for an API token, `jwt:<sub>` for a JWT.
    async fn subject(&self) -> &str {
        &self.0.subject
    }

    /// The mutation, e.g. `updatePrinciple`.
    async fn operation(&self) -> &str {
        &self.0.operation
    }

    /// Each change: `op` (create, update, delete, link, unlink), the node `id`, and the node or
    /// relationship `before` and `after` it, as in the seed format.
    async fn changes(&self) -> async_graphql::Json<serde_json::Value> {
        async_graphql::Json(self.0.changes.clone())
    }
}

/// Counts the whole trail, only when asked.
pub struct AuditTotals {
    store: Store,
    organisation: String,
}

#[Object]
impl AuditTotals {
    async fn total_count(&self) -> Result<u64> {
        self.store.audit_count(&self.organisation).await.map_err(to_gql)
    }
}

fn encode(entry: &AuditEntry) -> String {
    let Position { key, id } = Position::of_audit(entry);
    URL_SAFE_NO_PAD.encode(serde_json::json!([key, id]).to_string())
}

fn decode(cursor: &str) -> Result<Position> {
    let bad = || bad_input("after", "is not a cursor this list gave");
    let bytes = URL_SAFE_NO_PAD.decode(cursor.as_bytes()).map_err(|_| bad())?;
    let (key, id): (String, String) = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    Ok(Position { key, id })
}

#[derive(Default)]
pub struct AuditQueries;

#[Object]
impl AuditQueries {
    /// Who this request speaks for.
    async fn viewer(&self, ctx: &Context<'_>) -> Viewer {
        match ctx.data_unchecked::<Caller>() {
            Caller::Anonymous => Viewer { anonymous: true, organisation: None, role: None, subject: None },
            Caller::Member(m) => Viewer {
                anonymous: false,
                organisation: Some(m.organisation.clone()),
                role: Some(m.role.into()),
                subject: Some(m.subject.clone()),
            },
        }
    }

    /// The audit trail of the caller's organisation, newest first: every change set made through
    /// the API. Admins only; anyone else gets FORBIDDEN.
    async fn audit_log(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, AuditEntryObject, AuditTotals>> {
        let organisation = match ctx.data_unchecked::<Caller>() {
            Caller::Member(m) if m.role == Role::Admin => m.organisation.clone(),
            _ => return Err(to_gql(Error::forbidden("only an organisation's admins can read its audit log"))),
        };
        let first = first.unwrap_or(DEFAULT_PAGE);
        if !(0..=MAX_PAGE).contains(&first) {
            return Err(bad_input("first", format!("must be from 0 to {MAX_PAGE}")));
        }
        let after = after.as_deref().map(decode).transpose()?;
        let store = ctx.data_unchecked::<Store>().clone();
        let query = AuditQuery { organisation: organisation.clone(), after: after.clone(), limit: first as usize + 1 };
        let mut entries = store.audit_log(&query).await.map_err(to_gql)?;
        let more = entries.len() > first as usize;
        entries.truncate(first as usize);
        let mut connection =
            Connection::with_additional_fields(after.is_some(), more, AuditTotals { store, organisation });
        connection.edges.extend(entries.into_iter().map(|e| Edge::new(encode(&e), AuditEntryObject(e))));
        Ok(connection)
    }
}
