//! Relay connections over the store's keyset pagination: opaque cursors,
//! `first/after/last/before`, and a `totalCount` counted only when asked for.

use std::sync::Arc;

use async_graphql::connection::{Connection, Edge};
use async_graphql::{Context, Enum, InputObject, Object, OutputType, Result};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::domain::{Node, NodeKind};
use crate::store::{ListQuery, NodeFilter, OrderField, Position, Store};

use super::error::{bad_input, to_gql};

/// The page when none is asked for (the largest is the server's `--max-page-size`).
const DEFAULT_PAGE: i32 = 20;

#[derive(Enum, Clone, Copy, PartialEq, Eq, Default)]
pub enum NodeOrderField {
    Id,
    #[default]
    Title,
    CreatedAt,
    UpdatedAt,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq, Default)]
pub enum OrderDirection {
    #[default]
    Asc,
    Desc,
}

/// How to order a list of nodes; ties are broken by id.
#[derive(InputObject, Clone, Copy, Default)]
pub struct NodeOrder {
    #[graphql(default)]
    pub field: NodeOrderField,
    #[graphql(default)]
    pub direction: OrderDirection,
}

impl NodeOrderField {
    fn store(self) -> OrderField {
        match self {
            NodeOrderField::Id => OrderField::Id,
            NodeOrderField::Title => OrderField::Title,
            NodeOrderField::CreatedAt => OrderField::CreatedAt,
            NodeOrderField::UpdatedAt => OrderField::UpdatedAt,
        }
    }

    fn word(self) -> &'static str {
        match self {
            NodeOrderField::Id => "ID",
            NodeOrderField::Title => "TITLE",
            NodeOrderField::CreatedAt => "CREATED_AT",
            NodeOrderField::UpdatedAt => "UPDATED_AT",
        }
    }
}

/// Counts the whole list, lazily: only a query that asks for it pays for it.
pub struct ListTotals {
    store: Store,
    kind: NodeKind,
    filter: NodeFilter,
}

#[Object]
impl ListTotals {
    /// How many nodes the filter selects, across all pages.
    async fn total_count(&self) -> Result<u64> {
        self.store.count(self.kind, &self.filter).await.map_err(to_gql)
    }
}

impl NodeOrder {
    /// The order in words, as a cursor records it: `TITLE ASC`.
    fn words(self) -> String {
        let direction = if self.direction == OrderDirection::Desc { "DESC" } else { "ASC" };
        format!("{} {direction}", self.field.word())
    }
}

fn encode(order: NodeOrder, position: &Position) -> String {
    let json = serde_json::json!([order.words(), position.key, position.id]);
    URL_SAFE_NO_PAD.encode(json.to_string())
}

fn decode(field: &str, order: NodeOrder, cursor: &str) -> Result<Position> {
    let bad = || bad_input(field, "is not a cursor this list gave");
    let bytes = URL_SAFE_NO_PAD.decode(cursor.as_bytes()).map_err(|_| bad())?;
    let (words, key, id): (String, String, String) = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    if words != order.words() {
        return Err(bad_input(field, format!("was made for orderBy {words}, not {}", order.words())));
    }
    Ok(Position { key, id })
}

/// The arguments every list takes.
pub struct Window {
    pub first: Option<i32>,
    pub after: Option<String>,
    pub last: Option<i32>,
    pub before: Option<String>,
    pub order: Option<NodeOrder>,
}

pub type NodeConnection<T> = Connection<String, T, ListTotals>;

/// Runs one page of a list and wraps each node with `wrap`.
pub async fn page<T: OutputType>(
    ctx: &Context<'_>,
    kind: NodeKind,
    filter: NodeFilter,
    window: Window,
    wrap: fn(Arc<Node>) -> T,
) -> Result<NodeConnection<T>> {
    let store = ctx.data_unchecked::<Store>().clone();
    let order = window.order.unwrap_or_default();
    let max_page = super::limits::limits(ctx).max_page_size;
    let check = |field: &str, n: i32| {
        if (0..=i32::from(max_page)).contains(&n) {
            Ok(n)
        } else {
            Err(super::limits::over_limit(field, "max-page-size", 0, max_page.into()))
        }
    };
    let (limit, from_end) = match (window.first, window.last) {
        (Some(_), Some(_)) => return Err(bad_input("last", "give first or last, not both")),
        (Some(n), None) => (check("first", n)?, false),
        (None, Some(n)) => (check("last", n)?, true),
        (None, None) => (DEFAULT_PAGE.min(i32::from(max_page)), false),
    };
    let after = window.after.as_deref().map(|c| decode("after", order, c)).transpose()?;
    let before = window.before.as_deref().map(|c| decode("before", order, c)).transpose()?;
    let query = ListQuery {
        kind,
        filter: filter.clone(),
        order: order.field.store(),
        descending: order.direction == OrderDirection::Desc,
        after: after.clone(),
        before: before.clone(),
        limit: limit as usize + 1,
        from_end,
    };
    let mut nodes = store.list(&query).await.map_err(to_gql)?;
    let more = nodes.len() > limit as usize;
    if more {
        if from_end {
            nodes.remove(0);
        } else {
            nodes.pop();
        }
    }
    let (has_previous, has_next) = if from_end { (more, before.is_some()) } else { (after.is_some(), more) };
    let mut connection = Connection::with_additional_fields(has_previous, has_next, ListTotals { store, kind, filter });
    connection.edges.extend(nodes.into_iter().map(|node| {
        let position = Position { key: query.order.key(&node), id: node.id.to_string() };
        Edge::new(encode(order, &position), wrap(Arc::new(node)))
    }));
    Ok(connection)
}
