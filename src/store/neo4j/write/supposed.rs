//! A change set that only creates nodes and links them, written in one statement on a
//! supposition when the graph bears it out.
//!
//! Such a change set (`recordInfluence`) nearly always meets the graph its caller expects: every
//! node it links is there and seen by the caller, no node it creates is, and none of its
//! relationships is. So the rules first run on that supposition (`Supposing`), before anything is
//! read, with each learning that influences supposed to have begun on the day of its earliest
//! influence in the change set: the latest day the rules let pass. When they pass, one statement,
//! a transaction of its own:
//! * answers nothing while an import runs or once the caller's token no longer stands, as the
//!   last statement of a change set read first does (`unguarded`);
//! * locks the nodes the change set names, in the order of their ids, and reads them with its
//!   relationships, as the first statement of a change set read first reads them;
//! * checks that the graph is as supposed wherever the rules looked;
//! * and only then writes the changes with their audit entry.
//!
//! So a change set that meets the graph it expects is one statement instead of two.
//!
//! The graph is as supposed when each node supposed there is there and the caller's
//! organisation sees it, each node supposed missing is missing, no relationship named is there,
//! and each learning that influences was recorded on or before the day supposed, so that the day
//! it began, which is no later, is too. The rules read nothing else of a node (its organisation
//! and kind are its id's), so on such a graph they decide as they did on the supposition, and
//! write the same.
//!
//! When the graph is not as supposed, the statement writes nothing, and what it read goes to the
//! change set read first, which runs the rules on that instead of reading again: a refusal is
//! still two statements. When the rules refuse the supposition, or ask what it does not say (a
//! foreign end, a missing node's organisation), nothing is sent.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use neo4rs::{BoltType, Graph, Query, Row};

use super::super::read::{Params, audience_condition, corrupt, id_list};
use super::{
    Batch, EdgeKey, Neo4jWriter, TokenCheck, auto_commit, confirm, edge_key, key_list, lock_nodes, named, overtaken,
    read_clauses, unconfirmed_token, unguarded, with_token,
};
use crate::domain::{Actor, Applied, Audience, Caller, Change, Edge, Error, Node, NodeId, RelationshipKind, Result};
use crate::store::{AuditEntry, Failed, ForeignEnd, Writer, apply_changes};

/// A day spelt as `NaiveDate` spells days of four-digit years, as a Cypher pattern.
const DAY: &str = "[0-9]{4}-[0-9]{2}-[0-9]{2}";

/// How a change set on a supposition went.
pub(in crate::store::neo4j) enum Supposed {
    /// The graph was as supposed, and the change set was written.
    Written(Vec<Applied>),
    /// It was not, and nothing was written. The row holds what the statement read, as the first
    /// statement of a change set read first reads it (`read_clauses`).
    Unlike(Vec<Row>),
    /// Nothing was sent; or the statement answered nothing while an import runs, or failed to
    /// another change set (a deadlock, a node of the same id created meanwhile), and wrote
    /// nothing.
    Unsaid,
}

/// Runs a change set that only creates nodes and links them on the supposition, and writes it in
/// one statement if the graph bears the supposition out (see the module doc).
pub(in crate::store::neo4j) async fn apply(
    graph: &Graph,
    patience: Duration,
    sent: &AtomicU64,
    changes: &[Change],
    now: DateTime<Utc>,
    actor: Option<&Actor>,
) -> Result<Supposed, Failed> {
    // Only a member's change set is seen as someone: the supposition is that they see every node.
    let Some(member) = actor.and_then(|a| a.caller.member()) else { return Ok(Supposed::Unsaid) };
    let mut supposing = Supposing::of(changes, Audience::Member(member.organisation.clone()), sent);
    let applied = match apply_changes(&mut supposing, changes.to_vec(), now, actor).await {
        Ok(applied) if !supposing.beyond => applied,
        _ => return Ok(Supposed::Unsaid),
    };
    let last = changes.len().saturating_sub(1);
    let at_last = |error: Error| Failed { index: last, error };
    let writes = supposing.queue.queued().map_err(at_last)?;
    if writes.text.is_empty() {
        return Ok(Supposed::Unsaid);
    }
    // As a change set read first does: a token nobody has asked about yet is checked by the
    // statement; otherwise the statement waits for the caller's confirmation.
    let token = unconfirmed_token(actor);
    if token.is_none() {
        confirm(actor).await?;
    }
    let rows = match auto_commit(graph, patience, sent, supposing.statement(writes, token)).await {
        Err(error) if overtaken(&error) => return Ok(Supposed::Unsaid),
        rows => rows.map_err(at_last)?,
    };
    let Some(row) = rows.first() else {
        // An import runs, or the token no longer stands: the confirmation, asked apart, tells
        // which. A token that stands leaves the change set to be read first.
        confirm(actor).await?;
        return Ok(Supposed::Unsaid);
    };
    let holds: bool = row.get("holds").map_err(|e| at_last(corrupt(e)))?;
    // A row at all says the token stood.
    if let Some(token) = token {
        token.confirmation.confirm_seen(Caller::Member(token.member.clone()));
    }
    Ok(if holds { Supposed::Written(applied) } else { Supposed::Unlike(rows) })
}

/// A writer that answers the rules from the supposition, and queues what they write as a change
/// set read first queues it. Asked anything the supposition does not say, it fails the change and
/// notes it (`beyond`).
struct Supposing<'s> {
    /// Queues the writes; it never sends a statement (a change set read first holds at most
    /// `READ_FIRST_CHANGES` changes, fewer than a batch).
    queue: Neo4jWriter<'s>,
    /// Whom nodes are supposed seen by: the caller's organisation.
    audience: Audience,
    /// Every node the change set names, in the order of the ids (`named`), and every
    /// relationship it links: what the statement locks and reads, as a change set read first reads
    /// it.
    ids: Vec<NodeId>,
    keys: Vec<EdgeKey>,
    /// Nodes supposed there, each learning that influences with the day it is supposed to have
    /// begun.
    there: BTreeMap<NodeId, Option<NaiveDate>>,
    /// Nodes supposed missing: those the change set creates.
    missing: BTreeSet<NodeId>,
    /// Nodes the change set created so far.
    created: HashMap<NodeId, Node>,
    /// The relationships the change set links, supposed missing until it writes them.
    links: HashMap<EdgeKey, Option<Edge>>,
    /// Whether the rules asked what the supposition does not say.
    beyond: bool,
}

impl<'s> Supposing<'s> {
    /// The supposition for a change set of creations and links, as `audience` sees the graph:
    /// every node it names is there but those it creates, and none of its relationships is.
    fn of(changes: &[Change], audience: Audience, sent: &'s AtomicU64) -> Supposing<'s> {
        let (ids, keys) = named(changes);
        let missing: BTreeSet<NodeId> = changes
            .iter()
            .filter_map(|change| match change {
                Change::Create(node) => Some(node.id.clone()),
                _ => None,
            })
            .collect();
        let mut there: BTreeMap<NodeId, Option<NaiveDate>> =
            ids.iter().filter(|id| !missing.contains(*id)).map(|id| (id.clone(), None)).collect();
        for change in changes {
            if let Change::Link(edge) = change
                && let (Some(influence), Some(day)) = (&edge.influence, there.get_mut(&edge.from))
            {
                *day = Some(day.map_or(influence.on, |d| d.min(influence.on)));
            }
        }
        let links = keys.iter().map(|key| (key.clone(), None)).collect();
        Supposing {
            queue: Neo4jWriter::planning(sent),
            audience,
            ids,
            keys,
            there,
            missing,
            created: HashMap::new(),
            links,
            beyond: false,
        }
    }

    /// Fails the change: the rules asked what the supposition does not say.
    fn beyond<T>(&mut self) -> Result<T> {
        self.beyond = true;
        Err(Error::internal(anyhow::anyhow!("the rules asked what the supposition does not say")))
    }

    /// The statement that checks the supposition and writes `writes` if it holds; see the module
    /// doc. It answers one row (none while an import runs or once the token no longer stands),
    /// with what it read and whether the supposition held.
    fn statement(&mut self, writes: Batch, token: Option<TokenCheck>) -> Query {
        let mut params = Params::default();
        let seen = audience_condition(&self.audience, "n", &mut params).unwrap_or_else(|| "true".into());
        // The day a learning began (`Node::existed_since`), as written with it; a node written
        // before that was, says only the day it was recorded, on which it had begun. Days compare
        // as text when spelt with four-digit years; the supposition is taken not to hold on any
        // other.
        let day = "coalesce(n.existedSince, substring(n.createdAt, 0, 10))";
        // The nodes are all locked before any is read: a node deleted while the statement waited
        // for its lock is then not found, rather than read as it went.
        let text = format!(
            "{}
             {}
             {}
             CALL () {{
               UNWIND $there AS there
               OPTIONAL MATCH (n:Node {{id: there.id}})
               WITH there, n
               WHERE n IS NULL OR NOT ({seen})
                  OR (there.since IS NOT NULL
                      AND NOT ({day} =~ '{DAY}' AND there.since =~ '{DAY}' AND {day} <= there.since))
               RETURN count(*) AS unlike
             }}
             WITH nodes, edges, unlike = 0 AND edges = [] AND none(n IN nodes WHERE n.id IN $missing) AS holds
             CALL (holds) {{
               WITH holds WHERE holds
               {}
             }}
             RETURN nodes, edges, holds",
            unguarded(token),
            lock_nodes("$ids"),
            read_clauses(""),
            writes.text
        );
        let there: Vec<BoltType> = self
            .there
            .iter()
            .map(|(id, since)| {
                let since = since.map_or(BoltType::Null(neo4rs::BoltNull), |day| day.to_string().into());
                BoltType::from(HashMap::from([("id", BoltType::from(id.as_str())), ("since", since)]))
            })
            .collect();
        let missing: Vec<&str> = self.missing.iter().map(|id| id.as_str()).collect();
        let query = params
            .into_query(&text)
            .params(writes.params)
            .param("ids", id_list(&self.ids))
            .param("keys", key_list(&self.keys, |_| None))
            .param("there", there)
            .param("missing", missing);
        with_token(query, token)
    }
}

#[async_trait::async_trait]
impl Writer for Supposing<'_> {
    async fn node(&mut self, id: &NodeId) -> Result<Option<Node>> {
        if let Some(node) = self.created.get(id) {
            return Ok(Some(node.clone()));
        }
        if self.missing.contains(id) {
            return Ok(None);
        }
        self.beyond()
    }

    async fn exists(&mut self, id: &NodeId) -> Result<bool> {
        if self.created.contains_key(id) || self.there.contains_key(id) {
            return Ok(true);
        }
        if self.missing.contains(id) {
            return Ok(false);
        }
        self.beyond()
    }

    async fn existed_since(&mut self, id: &NodeId) -> Result<Option<NaiveDate>> {
        if let Some(node) = self.created.get(id) {
            return Ok(Some(node.existed_since()));
        }
        match self.there.get(id) {
            Some(Some(day)) => Ok(Some(*day)),
            None if self.missing.contains(id) => Ok(None),
            _ => self.beyond(),
        }
    }

    async fn sees(&mut self, id: &NodeId, audience: &Audience) -> Result<Option<bool>> {
        if let Some(node) = self.created.get(id) {
            return Ok(Some(audience.sees_node(node)));
        }
        if self.missing.contains(id) {
            return Ok(None);
        }
        if self.there.contains_key(id) && *audience == self.audience {
            return Ok(Some(true));
        }
        self.beyond()
    }

    async fn insert_node(&mut self, node: &Node) -> Result<()> {
        self.created.insert(node.id.clone(), node.clone());
        self.queue.insert_node(node).await
    }

    async fn replace_node(&mut self, _: &Node) -> Result<()> {
        self.beyond()
    }

    async fn delete_node(&mut self, _: &NodeId) -> Result<Vec<Edge>> {
        self.beyond()
    }

    async fn edge(
        &mut self,
        from: &NodeId,
        kind: RelationshipKind,
        to: &NodeId,
        foreign: Option<ForeignEnd>,
    ) -> Result<Option<Edge>> {
        match self.links.get(&(from.clone(), kind, to.clone())) {
            Some(known) if foreign.is_none() => Ok(known.clone()),
            _ => self.beyond(),
        }
    }

    async fn insert_edge(&mut self, edge: &Edge, foreign: Option<ForeignEnd>) -> Result<()> {
        if foreign.is_some() {
            return self.beyond();
        }
        self.links.insert(edge_key(edge), Some(edge.clone()));
        self.queue.insert_edge(edge, None).await
    }

    async fn delete_edge(&mut self, _: &NodeId, _: RelationshipKind, _: &NodeId, _: Option<ForeignEnd>) -> Result<()> {
        self.beyond()
    }

    async fn earliest_influence(&mut self, _: &NodeId) -> Result<Option<NaiveDate>> {
        self.beyond()
    }

    async fn influences_citing(&mut self, _: &NodeId) -> Result<u64> {
        self.beyond()
    }

    async fn has_foreign_ends_of(&mut self, _: &str) -> Result<bool> {
        self.beyond()
    }

    async fn record_audit(&mut self, entry: &AuditEntry) -> Result<()> {
        self.queue.record_audit(entry).await
    }
}
