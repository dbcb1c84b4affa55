//! The writer of an import into an empty store. Everything the store holds
//! was written through it, in this one transaction, so it can answer the
//! rules' questions (does this node exist, this relationship, when did this
//! learning begin) from what it wrote, kept in memory, instead of asking
//! SQLite for each record. The rules themselves stay those of every change
//! set (`store::apply`); only the answers come faster.

use super::SqliteWriter;
use crate::domain::{Edge, Node, NodeId, RelationshipKind, Result};
use crate::store::{AuditEntry, ForeignEnd, Writer};
use chrono::NaiveDate;
use foldhash::{HashMap, HashSet};

/// What the loader keeps of a node it wrote.
#[derive(Clone, Copy)]
struct Held {
    /// Its number among the nodes written, for relationship keys.
    number: u32,
    /// `Node::existed_since`, for the influence rule.
    since: NaiveDate,
}

/// Node numbers this wide or wider do not fit a packed relationship key; the
/// relationships between such nodes are looked up in SQLite instead.
const NUMBER_BITS: u32 = 28;

pub(super) struct Loader<'c> {
    sql: SqliteWriter<'c>,
    nodes: HashMap<Box<str>, Held>,
    /// The relationships written between two nodes of this store, packed by `key`.
    edges: HashSet<u64>,
}

/// A relationship's key, as far as the loader can tell.
enum Key {
    /// Both ends were written: their numbers and the kind, packed.
    Packed(u64),
    /// An end was not written: there is no such relationship here.
    NoEnd,
    /// A number too wide to pack: ask SQLite.
    Wide,
}

impl<'c> Loader<'c> {
    pub(super) fn new(sql: SqliteWriter<'c>) -> Loader<'c> {
        Loader { sql, nodes: HashMap::default(), edges: HashSet::default() }
    }

    fn key(&self, from: &NodeId, kind: RelationshipKind, to: &NodeId) -> Key {
        let (Some(from), Some(to)) = (self.nodes.get(from.as_str()), self.nodes.get(to.as_str())) else {
            return Key::NoEnd;
        };
        let fits = |n: u32| n < 1 << NUMBER_BITS;
        if !fits(from.number) || !fits(to.number) {
            return Key::Wide;
        }
        Key::Packed(
            (u64::from(from.number) << (64 - NUMBER_BITS))
                | (u64::from(to.number) << (64 - 2 * NUMBER_BITS))
                | kind as u64,
        )
    }

    fn forget_edge(&mut self, from: &NodeId, kind: RelationshipKind, to: &NodeId) {
        if let Key::Packed(key) = self.key(from, kind, to) {
            self.edges.remove(&key);
        }
    }
}

#[async_trait::async_trait]
impl Writer for Loader<'_> {
    async fn node(&mut self, id: &NodeId) -> Result<Option<Node>> {
        match self.nodes.contains_key(id.as_str()) {
            true => self.sql.node(id).await,
            false => Ok(None),
        }
    }

    async fn exists(&mut self, id: &NodeId) -> Result<bool> {
        Ok(self.nodes.contains_key(id.as_str()))
    }

    async fn existed_since(&mut self, id: &NodeId) -> Result<Option<NaiveDate>> {
        Ok(self.nodes.get(id.as_str()).map(|held| held.since))
    }

    async fn insert_node(&mut self, node: &Node) -> Result<()> {
        self.sql.insert_node(node).await?;
        let held = Held { number: self.nodes.len() as u32, since: node.existed_since() };
        self.nodes.insert(node.id.as_str().into(), held);
        Ok(())
    }

    async fn replace_node(&mut self, node: &Node) -> Result<()> {
        self.sql.replace_node(node).await?;
        if let Some(held) = self.nodes.get_mut(node.id.as_str()) {
            held.since = node.existed_since();
        }
        Ok(())
    }

    async fn delete_node(&mut self, id: &NodeId) -> Result<Vec<Edge>> {
        let edges = self.sql.delete_node(id).await?;
        for edge in &edges {
            self.forget_edge(&edge.from, edge.kind, &edge.to);
        }
        self.nodes.remove(id.as_str());
        Ok(edges)
    }

    async fn edge(
        &mut self,
        from: &NodeId,
        kind: RelationshipKind,
        to: &NodeId,
        foreign: Option<ForeignEnd>,
    ) -> Result<Option<Edge>> {
        let absent = foreign.is_none()
            && match self.key(from, kind, to) {
                Key::Packed(key) => !self.edges.contains(&key),
                Key::NoEnd => true,
                Key::Wide => false,
            };
        if absent {
            return Ok(None);
        }
        self.sql.edge(from, kind, to, foreign).await
    }

    async fn insert_edge(&mut self, edge: &Edge, foreign: Option<ForeignEnd>) -> Result<()> {
        if foreign.is_some() {
            return self.sql.insert_edge(edge, foreign).await;
        }
        self.sql.insert_edge(edge, None).await?;
        if let Key::Packed(key) = self.key(&edge.from, edge.kind, &edge.to) {
            self.edges.insert(key);
        }
        Ok(())
    }

    async fn delete_edge(
        &mut self,
        from: &NodeId,
        kind: RelationshipKind,
        to: &NodeId,
        foreign: Option<ForeignEnd>,
    ) -> Result<()> {
        self.sql.delete_edge(from, kind, to, foreign).await?;
        if foreign.is_none() {
            self.forget_edge(from, kind, to);
        }
        Ok(())
    }

    async fn earliest_influence(&mut self, learning: &NodeId) -> Result<Option<NaiveDate>> {
        self.sql.earliest_influence(learning).await
    }

    async fn influences_citing(&mut self, source: &NodeId) -> Result<u64> {
        self.sql.influences_citing(source).await
    }

    async fn record_audit(&mut self, entry: &AuditEntry) -> Result<()> {
        self.sql.record_audit(entry).await
    }
}
