//! The rules of a change set, written once over a backend's open transaction.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};

use serde_json::{Value as Json, json};

use crate::domain::{
    Actor, Applied, Audience, Caller, Change, Edge, EdgeRecord, Error, Member, Node, NodeId, NodeKind,
    RelationshipKind, Result, Role, check_influence_since,
};

use super::AuditEntry;

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

/// The end of a relationship that is a foreign id: a node of another
/// organisation's instance, which this store names but does not hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ForeignEnd {
    From,
    To,
}

impl ForeignEnd {
    /// The relationship's local end, whether it points out of that end, and its foreign end.
    pub fn split<'a>(self, from: &'a NodeId, to: &'a NodeId) -> (&'a NodeId, bool, &'a NodeId) {
        match self {
            ForeignEnd::To => (from, true, to),
            ForeignEnd::From => (to, false, from),
        }
    }
}

/// The primitive reads and writes of one open transaction. Relationship
/// methods are told which end, if either, is foreign.
#[async_trait]
pub trait Writer: Send {
    async fn node(&mut self, id: &NodeId) -> Result<Option<Node>>;
    /// Whether a node exists; cheaper than reading it where the node itself is not needed.
    async fn exists(&mut self, id: &NodeId) -> Result<bool> {
        Ok(self.node(id).await?.is_some())
    }
    /// The day a node began to exist (`Node::existed_since`), if it is here: all the influence
    /// rule needs of its learning; cheaper than reading it where a writer knows the day.
    async fn existed_since(&mut self, id: &NodeId) -> Result<Option<NaiveDate>> {
        Ok(self.node(id).await?.map(|node| node.existed_since()))
    }
    /// Whether `audience` sees a node, if it is here: all the rules of authorisation need of it
    /// (its organisation and kind are its id's).
    async fn sees(&mut self, id: &NodeId, audience: &Audience) -> Result<Option<bool>> {
        Ok(self.node(id).await?.map(|node| audience.sees_node(&node)))
    }
    async fn insert_node(&mut self, node: &Node) -> Result<()>;
    async fn replace_node(&mut self, node: &Node) -> Result<()>;
    /// Removes a node and its relationships (those with a foreign end too), returning them.
    async fn delete_node(&mut self, id: &NodeId) -> Result<Vec<Edge>>;
    async fn edge(
        &mut self,
        from: &NodeId,
        kind: RelationshipKind,
        to: &NodeId,
        foreign: Option<ForeignEnd>,
    ) -> Result<Option<Edge>>;
    async fn insert_edge(&mut self, edge: &Edge, foreign: Option<ForeignEnd>) -> Result<()>;
    async fn delete_edge(
        &mut self,
        from: &NodeId,
        kind: RelationshipKind,
        to: &NodeId,
        foreign: Option<ForeignEnd>,
    ) -> Result<()>;
    /// The earliest date of the influences a learning has (on foreign nodes too), if any.
    async fn earliest_influence(&mut self, learning: &NodeId) -> Result<Option<NaiveDate>>;
    /// How many influences (to foreign nodes too) name this source among their sources.
    async fn influences_citing(&mut self, source: &NodeId) -> Result<u64>;
    /// Whether a relationship here has a foreign end of this organisation, a partner's node.
    async fn has_foreign_ends_of(&mut self, organisation: &str) -> Result<bool>;
    /// Writes an entry of the audit trail.
    async fn record_audit(&mut self, entry: &AuditEntry) -> Result<()>;
}

/// Applies the changes in order through `writer`. The caller commits on `Ok`
/// and rolls back on `Err`. With an actor, each change is first checked
/// against what the actor may do, only the actor's partners' ids may be
/// foreign ends, and an audit entry is written last.
pub async fn apply_changes(
    writer: &mut dyn Writer,
    changes: Vec<Change>,
    now: DateTime<Utc>,
    actor: Option<&Actor>,
) -> Result<Vec<Applied>, Failed> {
    let member = match actor {
        Some(actor) => Some(may_change(actor).map_err(|error| Failed { index: 0, error })?),
        None => None,
    };
    let mut set = ChangeSet::new(now);
    set.partners = actor.map(|a| a.partners.clone());
    let mut applied = Vec::with_capacity(changes.len());
    for (index, change) in changes.into_iter().enumerate() {
        if let (Some(member), Some(actor)) = (member, actor)
            && let Err(error) = authorise(writer, member, &actor.partners, &change).await
        {
            return Err(Failed { index, error });
        }
        set.apply(writer, vec![change], |done| applied.push(done)).await?;
    }
    set.finish()?;
    if let (Some(actor), Some(member)) = (actor, member) {
        let entry = audit_entry(actor, member, &applied, now);
        writer.record_audit(&entry).await.map_err(|error| Failed { index: applied.len().saturating_sub(1), error })?;
    }
    Ok(applied)
}

/// The member behind an actor, when it may change anything at all.
fn may_change(actor: &Actor) -> Result<&Member> {
    match &actor.caller {
        Caller::Anonymous => Err(Error::forbidden("anonymous callers cannot change the graph; send a token")),
        Caller::Member(m) if m.role == Role::Viewer => {
            Err(Error::forbidden(format!("a viewer of {} cannot change the graph", m.organisation)))
        }
        Caller::Member(m) => Ok(m),
    }
}

/// Refuses a change the member may not make. A node the member cannot see is
/// answered exactly as a missing one, so that a refusal reveals nothing.
async fn authorise(w: &mut dyn Writer, member: &Member, partners: &[String], change: &Change) -> Result<()> {
    let audience = Audience::Member(member.organisation.clone());
    match change {
        Change::Create(node) => {
            if node.organisation() != member.organisation {
                return Err(Error::forbidden(format!(
                    "a member of {} cannot create nodes owned by {}",
                    member.organisation,
                    node.organisation()
                )));
            }
            if node.kind() == NodeKind::Organisation && member.role != Role::Admin {
                return Err(Error::forbidden(format!(
                    "only an admin of {} can create or change its organisation node",
                    member.organisation
                )));
            }
            Ok(())
        }
        Change::Update { id, .. } | Change::Delete(id) => changeable(w, member, &audience, id).await,
        Change::Link(edge) => {
            not_foreign(w, member, partners, &edge.from).await?;
            changeable(w, member, &audience, &edge.from).await?;
            seen(w, &audience, &edge.to).await?;
            for source in edge.influence.iter().flat_map(|i| &i.sources) {
                if seen(w, &audience, source).await.is_err() {
                    return Err(Error::rule("sources", "UNKNOWN_NODE", format!("no node has the id {source}")));
                }
            }
            Ok(())
        }
        Change::Unlink { from, to, .. } => {
            not_foreign(w, member, partners, from).await?;
            changeable(w, member, &audience, from).await?;
            seen(w, &audience, to).await.map(|_| ())
        }
    }
}

/// A member changes relationships only from its own organisation's nodes; a
/// foreign id is a partner's node, whose relationships are the partner's.
async fn not_foreign(w: &mut dyn Writer, member: &Member, partners: &[String], id: &NodeId) -> Result<()> {
    if place(w, id, Some(partners)).await? != Place::Foreign {
        return Ok(());
    }
    Err(Error::forbidden(format!(
        "{id} belongs to {}, whose nodes this instance does not hold; a member of {} can link only from its own organisation's nodes",
        id.organisation(),
        member.organisation
    )))
}

/// Where an end of a relationship is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    Here,
    /// A foreign id: its organisation has no node in this store, and the change set may name its ids.
    Foreign,
    Missing,
}

/// Where `id` is. `partners` lists the organisations whose ids may be foreign (any, when `None`);
/// a missing node of any other organisation, or of one this store holds, is missing.
async fn place(w: &mut dyn Writer, id: &NodeId, partners: Option<&[String]>) -> Result<Place> {
    if w.exists(id).await? {
        return Ok(Place::Here);
    }
    let organisation = id.organisation();
    if partners.is_some_and(|p| !p.iter().any(|o| o == organisation)) {
        return Ok(Place::Missing);
    }
    match w.exists(&NodeId::organisation_node(organisation)?).await? {
        true => Ok(Place::Missing),
        false => Ok(Place::Foreign),
    }
}

/// Which end of a relationship is foreign, from where its ends are; `Err` when both are foreign,
/// as a relationship needs an end in this store. Missing ends are the caller's to report.
fn foreign_end(from: Place, to: Place) -> Result<Option<ForeignEnd>> {
    match (from, to) {
        (Place::Foreign, Place::Foreign) => Err(Error::rule(
            "to",
            "NO_LOCAL_END",
            "both ends belong to organisations this instance does not hold; a relationship needs one end here",
        )),
        (Place::Foreign, _) => Ok(Some(ForeignEnd::From)),
        (_, Place::Foreign) => Ok(Some(ForeignEnd::To)),
        _ => Ok(None),
    }
}

/// A node the audience cannot see is, to it, not there: whether it is there. A missing node
/// passes: the change's own rules report it.
async fn seen(w: &mut dyn Writer, audience: &Audience, id: &NodeId) -> Result<bool> {
    match w.sees(id, audience).await? {
        Some(false) => Err(Error::no_node(id)),
        there => Ok(there.is_some()),
    }
}

/// Whether the member may change (or link from) a node: its organisation's, and for the
/// organisation node itself, as an admin.
async fn changeable(w: &mut dyn Writer, member: &Member, audience: &Audience, id: &NodeId) -> Result<()> {
    if !seen(w, audience, id).await? {
        return Ok(());
    }
    if id.organisation() != member.organisation {
        return Err(Error::forbidden(format!(
            "{id} belongs to {}; a member of {} cannot change it",
            id.organisation(),
            member.organisation
        )));
    }
    if id.kind() == NodeKind::Organisation && member.role != Role::Admin {
        return Err(Error::forbidden(format!(
            "only an admin of {} can create or change its organisation node",
            member.organisation
        )));
    }
    Ok(())
}

/// The audit entry of a change set: who, when, through what, and each change with its before and after.
fn audit_entry(actor: &Actor, member: &Member, applied: &[Applied], now: DateTime<Utc>) -> AuditEntry {
    let edge = |e: &Edge| Json::Object(EdgeRecord::from_edge(e).into_json());
    let changes = applied
        .iter()
        .map(|change| match change {
            Applied::Created(n) => json!({ "op": "create", "id": n.id.as_str(), "after": n.to_record() }),
            Applied::Updated { before, after } => {
                json!({ "op": "update", "id": after.id.as_str(), "before": before.to_record(), "after": after.to_record() })
            }
            Applied::Deleted { node, edges } => json!({
                "op": "delete", "id": node.id.as_str(), "before": node.to_record(),
                "relationships": edges.iter().map(edge).collect::<Vec<_>>()
            }),
            Applied::Linked(e) => json!({ "op": "link", "after": edge(e) }),
            Applied::Unlinked(e) => json!({ "op": "unlink", "before": edge(e) }),
        })
        .collect();
    AuditEntry {
        id: crate::auth::random_id(),
        at: now,
        organisation: member.organisation.clone(),
        role: member.role,
        subject: member.subject.clone(),
        operation: actor.operation.clone(),
        changes: Json::Array(changes),
    }
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
    /// The organisations whose ids may be foreign ends: an actor's partners,
    /// or any organisation this store does not hold (`None`: seeding, import, copy).
    partners: Option<Vec<String>>,
}

impl ChangeSet {
    pub fn new(now: DateTime<Utc>) -> ChangeSet {
        ChangeSet { now, next: 0, awaiting: HashMap::new(), owners: HashSet::new(), partners: None }
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
                // Its ids would stop being foreign, and the relationships that name them as a
                // partner's would point at nodes this store does not hold.
                if w.has_foreign_ends_of(node.organisation()).await? {
                    return Err(Error::rule(
                        "id",
                        "PARTNER_LINKS",
                        format!(
                            "relationships here point at nodes of `{}` as a partner's; unlink them before this \
                             instance holds `{}` itself",
                            node.organisation(),
                            node.organisation()
                        ),
                    ));
                }
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
        apply_one(w, change, self.now, self.partners.as_deref()).await
    }
}

async fn apply_one(
    w: &mut dyn Writer,
    change: Change,
    now: DateTime<Utc>,
    partners: Option<&[String]>,
) -> Result<Applied> {
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
        Change::Link(edge) => link(w, edge, partners).await,
        Change::Unlink { from, kind, to } => {
            let none = || Error::NotFound(format!("there is no relationship {from} -[{kind}]-> {to}"));
            let ends = (place(w, &from, partners).await?, place(w, &to, partners).await?);
            if ends.0 == Place::Missing || ends.1 == Place::Missing {
                return Err(none());
            }
            let foreign = foreign_end(ends.0, ends.1).map_err(|_| none())?;
            let edge = w.edge(&from, kind, &to, foreign).await?.ok_or_else(none)?;
            w.delete_edge(&from, kind, &to, foreign).await?;
            Ok(Applied::Unlinked(edge))
        }
    }
}

async fn link(w: &mut dyn Writer, edge: Edge, partners: Option<&[String]>) -> Result<Applied> {
    // The edge's own rules hold however it was built, not only when parsed from input.
    let edge = edge.checked()?;
    // Only an influence needs its learning's first day; other ends need only be placed.
    let since = match edge.influence {
        Some(_) => w.existed_since(&edge.from).await?,
        None => None,
    };
    let from = match since {
        Some(_) => Place::Here,
        None => place(w, &edge.from, partners).await?,
    };
    if from == Place::Missing {
        return Err(Error::no_node(&edge.from));
    }
    let to = place(w, &edge.to, partners).await?;
    if to == Place::Missing {
        return Err(Error::no_node(&edge.to));
    }
    let foreign = foreign_end(from, to)?;
    if w.edge(&edge.from, edge.kind, &edge.to, foreign).await?.is_some() {
        return Err(Error::Conflict(format!("{} -[{}]-> {} already exists", edge.from, edge.kind, edge.to)));
    }
    // A foreign learning's date is its owner's to check, against the partner's answer.
    if let Some(since) = since {
        check_influence_since(&edge.from, since, &edge)?;
    }
    for source in edge.influence.iter().flat_map(|i| &i.sources) {
        if !w.exists(source).await? {
            return Err(Error::rule("sources", "UNKNOWN_NODE", format!("no node has the id {source}")));
        }
    }
    w.insert_edge(&edge, foreign).await?;
    Ok(Applied::Linked(edge))
}
