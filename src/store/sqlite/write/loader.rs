//! The writer of an import into an empty store. Everything the store holds
//! was written through it, in this one transaction, so it can answer the
//! rules' questions (does this node exist, this relationship, when did this
//! learning begin) from what it wrote, kept in memory, instead of asking
//! SQLite for each record. The rules themselves stay those of every change
//! set (`store::apply`); only the answers come faster. Its rows go, built and
//! in batches, to a thread of their own that writes them (`rows`); what it
//! cannot answer from memory goes to that thread too, after the rows before it.

use std::sync::mpsc::{SyncSender, sync_channel};

use super::SqliteWriter;
use super::rows::{EdgeRow, Job, NodeRow, Row};
use crate::domain::{Edge, Error, Node, NodeId, RelationshipKind, Result};
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

/// How many rows travel to the writer's thread together.
const ROWS: usize = 1_024;

pub(super) struct Loader {
    jobs: SyncSender<Job>,
    rows: Vec<Row>,
    /// The index of the change being applied, which its rows carry.
    index: usize,
    nodes: HashMap<Box<str>, Held>,
    /// How many nodes were written: the number of the next one (never that of
    /// a node deleted since, whose relationships' keys may linger nowhere).
    numbered: u32,
    /// The relationships written between two nodes of this store, packed by `key`.
    edges: HashSet<u64>,
    /// The organisations of the foreign ends written, whose own organisation node the rules
    /// then ask SQLite about.
    foreign_owners: HashSet<String>,
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

/// Why the loader could not go on: the writer's thread stopped, on an error of
/// its own, which is the one reported.
fn stopped() -> Error {
    Error::internal(anyhow::anyhow!("the import's writer stopped"))
}

impl Loader {
    pub(super) fn new(jobs: SyncSender<Job>) -> Loader {
        Loader {
            jobs,
            rows: Vec::with_capacity(ROWS),
            index: 0,
            nodes: HashMap::default(),
            numbered: 0,
            edges: HashSet::default(),
            foreign_owners: HashSet::default(),
        }
    }

    /// Tells the loader which change comes next, for the rows it writes.
    pub(super) fn at(&mut self, index: usize) {
        self.index = index;
    }

    fn push(&mut self, row: Row) -> Result<()> {
        self.rows.push(row);
        if self.rows.len() >= ROWS {
            self.flush()?;
        }
        Ok(())
    }

    /// Hands the rows built so far to the writer's thread.
    pub(super) fn flush(&mut self) -> Result<()> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let rows = std::mem::replace(&mut self.rows, Vec::with_capacity(ROWS));
        self.jobs.send(Job::Rows(rows)).map_err(|_| stopped())
    }

    /// Runs `work` on the writer's thread once the rows before it are written, and waits for it.
    fn ask<T: Send + 'static>(
        &mut self,
        work: impl FnOnce(&mut SqliteWriter<'_>) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.flush()?;
        let (answer, answered) = sync_channel(1);
        let job = move |conn: &mut rusqlite::Connection| {
            let _ = answer.send(work(&mut SqliteWriter { tx: conn }));
        };
        self.jobs.send(Job::Ask(Box::new(job))).map_err(|_| stopped())?;
        answered.recv().map_err(|_| stopped())?
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

/// Runs a `Writer` method on the writer's thread; its futures never wait.
macro_rules! on_sqlite {
    ($loader:expr, |$writer:ident| $call:expr) => {
        $loader.ask(move |$writer| futures::executor::block_on($call))
    };
}

#[async_trait::async_trait]
impl Writer for Loader {
    async fn node(&mut self, id: &NodeId) -> Result<Option<Node>> {
        if !self.nodes.contains_key(id.as_str()) {
            return Ok(None);
        }
        let id = id.clone();
        on_sqlite!(self, |w| w.node(&id))
    }

    async fn exists(&mut self, id: &NodeId) -> Result<bool> {
        Ok(self.nodes.contains_key(id.as_str()))
    }

    async fn existed_since(&mut self, id: &NodeId) -> Result<Option<NaiveDate>> {
        Ok(self.nodes.get(id.as_str()).map(|held| held.since))
    }

    async fn insert_node(&mut self, node: &Node) -> Result<()> {
        self.push(Row::Node(self.index, NodeRow::of(node)?))?;
        let held = Held { number: self.numbered, since: node.existed_since() };
        self.numbered = self.numbered.saturating_add(1);
        self.nodes.insert(node.id.as_str().into(), held);
        Ok(())
    }

    async fn replace_node(&mut self, node: &Node) -> Result<()> {
        let row = NodeRow::of(node)?;
        self.ask(move |w| w.replace_row(&row))?;
        if let Some(held) = self.nodes.get_mut(node.id.as_str()) {
            held.since = node.existed_since();
        }
        Ok(())
    }

    async fn delete_node(&mut self, id: &NodeId) -> Result<Vec<Edge>> {
        let gone = id.clone();
        let edges = on_sqlite!(self, |w| w.delete_node(&gone))?;
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
        let (from, to) = (from.clone(), to.clone());
        on_sqlite!(self, |w| w.edge(&from, kind, &to, foreign))
    }

    async fn insert_edge(&mut self, edge: &Edge, foreign: Option<ForeignEnd>) -> Result<()> {
        self.push(Row::Edge(self.index, EdgeRow::of(edge, foreign)))?;
        if let Some(end) = foreign {
            let (_, _, far) = end.split(&edge.from, &edge.to);
            self.foreign_owners.insert(far.organisation().to_owned());
        }
        if foreign.is_none()
            && let Key::Packed(key) = self.key(&edge.from, edge.kind, &edge.to)
        {
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
        let (gone_from, gone_to) = (from.clone(), to.clone());
        on_sqlite!(self, |w| w.delete_edge(&gone_from, kind, &gone_to, foreign))?;
        if foreign.is_none() {
            self.forget_edge(from, kind, to);
        }
        Ok(())
    }

    async fn earliest_influence(&mut self, learning: &NodeId) -> Result<Option<NaiveDate>> {
        let learning = learning.clone();
        on_sqlite!(self, |w| w.earliest_influence(&learning))
    }

    async fn influences_citing(&mut self, source: &NodeId) -> Result<u64> {
        let source = source.clone();
        on_sqlite!(self, |w| w.influences_citing(&source))
    }

    async fn has_foreign_ends_of(&mut self, organisation: &str) -> Result<bool> {
        // The store was empty: only this import can have linked to the organisation's nodes.
        if !self.foreign_owners.contains(organisation) {
            return Ok(false);
        }
        let organisation = organisation.to_owned();
        on_sqlite!(self, |w| w.has_foreign_ends_of(&organisation))
    }

    async fn record_audit(&mut self, entry: &AuditEntry) -> Result<()> {
        let entry = entry.clone();
        on_sqlite!(self, |w| w.record_audit(&entry))
    }
}
