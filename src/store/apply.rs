//! The rules of a change set, written once over a backend's open transaction.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};

use crate::domain::{
    Applied, Change, Edge, Error, Node, NodeId, NodeKind, RelationshipKind, Result, check_influence_date,
};

/// A change set that failed: which change, and why. Nothing of it was kept.
#[derive(Debug)]
pub struct Failed {
    pub index: usize,
    pub error: Error,
}

impl From<Failed> for Error {
    fn from(failed: Failed) -> Error {
        failed.error
    }
}

/// The primitive reads and writes of one open transaction.
#[async_trait]
pub trait Writer: Send {
    async fn node(&mut self, id: &NodeId) -> Result<Option<Node>>;
    /// Whether a node exists; cheaper than reading it where the node itself is not needed.
    async fn exists(&mut self, id: &NodeId) -> Result<bool> {
        Ok(self.node(id).await?.is_some())
    }
    async fn insert_node(&mut self, node: &Node) -> Result<()>;
    async fn replace_node(&mut self, node: &Node) -> Result<()>;
    /// Removes a node and its relationships, returning those relationships.
    async fn delete_node(&mut self, id: &NodeId) -> Result<Vec<Edge>>;
    async fn edge(&mut self, from: &NodeId, kind: RelationshipKind, to: &NodeId) -> Result<Option<Edge>>;
    async fn insert_edge(&mut self, edge: &Edge) -> Result<()>;
    async fn delete_edge(&mut self, from: &NodeId, kind: RelationshipKind, to: &NodeId) -> Result<()>;
    /// The earliest date of the influences a learning has, if any.
    async fn earliest_influence(&mut self, learning: &NodeId) -> Result<Option<NaiveDate>>;
    /// How many influences name this source among their sources.
    async fn influences_citing(&mut self, source: &NodeId) -> Result<u64>;
}

/// Applies the changes in order through `writer`. The caller commits on `Ok`
/// and rolls back on `Err`.
pub async fn apply_changes(
    writer: &mut dyn Writer,
    changes: Vec<Change>,
    now: DateTime<Utc>,
) -> Result<Vec<Applied>, Failed> {
    let mut set = ChangeSet::new(now);
    let mut applied = Vec::with_capacity(changes.len());
    set.apply(writer, changes, |done| applied.push(done)).await?;
    set.finish()?;
    Ok(applied)
}

/// A change set on its way through a transaction: the state its rules keep
/// from one change to the next, so that a long change set (an import) can be
/// fed in batches rather than held whole.
pub struct ChangeSet {
    now: DateTime<Utc>,
    /// How many changes were applied so far: the index of the next one.
    next: usize,
    /// Organisations that nodes created so far belong to but that do not exist
    /// (yet), each with the first change that needs it. A change set may create
    /// an organisation after its nodes; it must have done so before it does
    /// anything but create nodes, and before it ends.
    awaiting: HashMap<NodeId, usize>,
    /// Organisations known to exist. Organisations are never deleted, so what
    /// was seen once holds for the rest of the change set.
    owners: HashSet<NodeId>,
}

impl ChangeSet {
    pub fn new(now: DateTime<Utc>) -> ChangeSet {
        ChangeSet { now, next: 0, awaiting: HashMap::new(), owners: HashSet::new() }
    }

    /// How many changes were applied so far.
    pub fn applied(&self) -> usize {
        self.next
    }

    /// Applies the next changes in order; `keep` receives what each one did.
    pub async fn apply(
        &mut self,
        writer: &mut dyn Writer,
        changes: Vec<Change>,
        mut keep: impl FnMut(Applied) + Send,
    ) -> Result<(), Failed> {
        for change in changes {
            let index = self.next;
            if !matches!(change, Change::Create(_)) {
                self.check_owners()?;
            }
            match self.apply_one(writer, change).await {
                Ok(done) => keep(done),
                Err(error) => return Err(Failed { index, error }),
            }
            self.next += 1;
        }
        Ok(())
    }

    /// Checks what only the whole change set can tell. The caller commits on `Ok`.
    pub fn finish(self) -> Result<(), Failed> {
        self.check_owners()
    }

    fn check_owners(&self) -> Result<(), Failed> {
        let Some((owner, &index)) = self.awaiting.iter().min_by_key(|(_, index)| **index) else { return Ok(()) };
        let organisation = owner.organisation();
        Err(Failed {
            index,
            error: Error::rule(
                "organisation",
                "UNKNOWN_ORGANISATION",
                format!("the organisation `{organisation}` does not exist; create {owner} first"),
            ),
        })
    }

    async fn apply_one(&mut self, w: &mut dyn Writer, change: Change) -> Result<Applied> {
        if let Change::Create(node) = &change {
            if w.exists(&node.id).await? {
                return Err(Error::Conflict(format!("a node with the id {} already exists", node.id)));
            }
            if node.kind() == NodeKind::Organisation {
                self.awaiting.remove(&node.id);
                self.owners.insert(node.id.clone());
            } else {
                let owner = NodeId::organisation_node(node.organisation())?;
                if !self.owners.contains(&owner) && !self.awaiting.contains_key(&owner) {
                    if w.exists(&owner).await? {
                        self.owners.insert(owner);
                    } else {
                        self.awaiting.insert(owner, self.next);
                    }
                }
            }
        }
        apply_one(w, change, self.now).await
    }
}

async fn apply_one(w: &mut dyn Writer, change: Change, now: DateTime<Utc>) -> Result<Applied> {
    match change {
        // Its id and its owner were checked by `ChangeSet::apply_one`.
        Change::Create(node) => {
            w.insert_node(&node).await?;
            Ok(Applied::Created(node))
        }
        Change::Update { id, patch } => {
            let before = w.node(&id).await?.ok_or_else(|| Error::no_node(&id))?;
            let after = before.patched(&patch, now)?;
            let earliest = match after.kind() {
                NodeKind::Learning => w.earliest_influence(&id).await?,
                _ => None,
            };
            if let Some(earliest) = earliest.filter(|e| *e < after.existed_since()) {
                return Err(Error::rule(
                    "capturedOn",
                    "INFLUENCE_BEFORE_LEARNING",
                    format!(
                        "the learning already has an influence dated {earliest}, before {}; a learning cannot influence anything before it existed",
                        after.existed_since()
                    ),
                ));
            }
            w.replace_node(&after).await?;
            Ok(Applied::Updated { before, after })
        }
        Change::Delete(id) => {
            let node = w.node(&id).await?.ok_or_else(|| Error::no_node(&id))?;
            if node.kind() == NodeKind::Source {
                let citing = w.influences_citing(&id).await?;
                if citing > 0 {
                    return Err(Error::Conflict(format!(
                        "{id} backs {citing} influence(s); remove it from their sources first"
                    )));
                }
            }
            if node.kind() == NodeKind::Organisation {
                return Err(Error::Conflict(format!(
                    "{id} is an organisation; organisations are not deleted through the API"
                )));
            }
            let edges = w.delete_node(&id).await?;
            Ok(Applied::Deleted { node, edges })
        }
        Change::Link(edge) => {
            // The edge's own rules hold however it was built, not only when parsed from input.
            let edge = edge.checked()?;
            // Only an influence needs its learning read (for its date); other ends need only exist.
            let learning = match edge.influence {
                Some(_) => Some(w.node(&edge.from).await?.ok_or_else(|| Error::no_node(&edge.from))?),
                None if w.exists(&edge.from).await? => None,
                None => return Err(Error::no_node(&edge.from)),
            };
            if !w.exists(&edge.to).await? {
                return Err(Error::no_node(&edge.to));
            }
            if w.edge(&edge.from, edge.kind, &edge.to).await?.is_some() {
                return Err(Error::Conflict(format!("{} -[{}]-> {} already exists", edge.from, edge.kind, edge.to)));
            }
            if let (Some(influence), Some(learning)) = (&edge.influence, &learning) {
                check_influence_date(learning, &edge)?;
                for source in &influence.sources {
                    if !w.exists(source).await? {
                        return Err(Error::rule("sources", "UNKNOWN_NODE", format!("no node has the id {source}")));
                    }
                }
            }
            w.insert_edge(&edge).await?;
            Ok(Applied::Linked(edge))
        }
        Change::Unlink { from, kind, to } => {
            let edge = w
                .edge(&from, kind, &to)
                .await?
                .ok_or_else(|| Error::NotFound(format!("there is no relationship {from} -[{kind}]-> {to}")))?;
            w.delete_edge(&from, kind, &to).await?;
            Ok(Applied::Unlinked(edge))
        }
    }
}
