//! Writes: one change set in one Neo4j transaction, committed only when every
//! change passed the shared rules in `store::apply`, rolled back otherwise.
//!
//! The rules decide on what they read (does the id exist? does this
//! relationship exist already?), so what they read must not change under them
//! before the change set commits. Two locks see to it:
//! * **Node locks.** A change set locks every node its decisions rest on before
//!   it reads it, by writing the node's id over itself (`LOCK`: a write that
//!   changes nothing and holds the node's write lock until the transaction
//!   ends). A change set checks a relationship with both its ends locked, and
//!   writes or removes one with its ends locked (a deleted node's, with the
//!   node), so one that found it missing or present finds it so until it
//!   commits. A node that does not exist yet is guarded by the uniqueness of
//!   ids instead: of two change sets creating one id, the second fails at its
//!   write.
//! * **The change lock.** A change set that reads or writes as it goes
//!   (updates, deletions, unlinking, anything large) first writes the one
//!   `(:ChangeLock)` node, and so runs alone among such change sets, as
//!   SQLite's `BEGIN IMMEDIATE` makes them. The lock is not a statement of its
//!   own: it opens whatever statement comes first (`TAKE_LOCK`).
//!
//! Because nobody else changes what it has locked, the writer can keep what it
//! knows in memory, so that a change set costs a bounded number of round trips
//! however many changes it holds (a seed, a copy):
//! * before the rules run, one statement takes the change lock, locks and reads
//!   every node the changes name and every relationship they link or unlink;
//!   the answers to `node` and `edge` then come from memory, kept true by the
//!   writer's own writes (a relationship touching a node created in this change
//!   set can only be one this change set made);
//! * new nodes and relationships are queued and written in batches
//!   (`UNWIND`), before any other write or read that could see them, and
//!   before the commit; the queued batches of every kind, and the audit entry
//!   once the rules have passed, go in one statement (`Batch`).
//!
//! A change set that only creates nodes and links them, as `recordInfluence`
//! does, takes no change lock: it is read first (`read_first`), without locks
//! and out of any transaction; the rules run on what was read; then one
//! statement, a transaction of its own, locks the nodes read, checks that every
//! node and relationship read is still exactly as read, and writes, or answers
//! that something changed, and the change set runs again. So it is two
//! statements without BEGIN or COMMIT, and two such change sets wait for each
//! other only when they share a node. Their node locks are taken in the order of
//! the ids; a deadlock with a change set that locks as it goes is broken by
//! Neo4j, and whichever of the two it fails runs again.
//!
//! Before it is read first, such a change set is tried on a supposition, the
//! graph its caller expects (`supposed`): when a member's change set meets it,
//! it is one statement, which locks and reads what the change set names, checks
//! the supposition and writes; when not, that statement's read is the change set
//! read first's, which then needs only its last statement.
//!
//! A change set whose caller the store has still to confirm (`Actor::confirmation`,
//! a request admitted on an API token seen before) waits for that before its first
//! statement that locks or writes; a change set read first so reads alongside it.
//! When nobody has asked about the token yet, a change set read first does not
//! wait: its last statement checks the token before it locks anything, and writes
//! only while the token stands and names the caller. The token is then confirmed
//! without a statement of its own, and a token revoked meanwhile writes nothing.
//!
//! A relationship's foreign end (a partner's node, see `store::apply`) is a
//! stub `(:ForeignNode {id, organisation, kind})` without the `:Node` label,
//! so that nothing that reads local nodes sees it; a stub lives as long as it
//! has a relationship. Such relationships are rare, written one by one, and only
//! under the change lock.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use neo4rs::{BoltType, Graph, Query, Row, Txn};
use serde::Deserialize;
use serde::de::IntoDeserializer;
use serde_json::Value as Json;

use super::access::audit_properties;
use super::read::{EDGE_MAP, EdgeRow, NODE_MAP, NodeRow, corrupt, field_property, id_list};
use super::search::search_text;
use super::{db, unavailable};
use crate::domain::{
    Actor, Applied, Caller, Change, Confirmation, Edge, Error, Member, Node, NodeId, NodeKind, RelationshipKind,
    Result, timestamp,
};
use crate::store::{AuditEntry, ChangeBatches, ChangeSet, Failed, ForeignEnd, Writer, apply_changes, next_batch};
use supposed::Supposed;

mod supposed;

/// How many queued nodes or relationships one statement writes at most.
const BATCH: usize = 1_000;

/// The clause that takes the change lock, which opens a change set's first statement. Its
/// variable's name is one no other statement of this file uses.
const TAKE_LOCK: &str = "MERGE (changeLock:ChangeLock {id: 1}) SET changeLock.changeSets = coalesce(changeLock.changeSets, 0) + 1 \
     WITH changeLock ";

/// Locks the node `n` (see the module doc): its id written over itself changes nothing, and
/// holds the node's write lock until the transaction ends. What is read of `n` after it is as
/// the last change set to hold the lock left it.
const LOCK: &str = "SET n.id = n.id";

/// A subquery that locks the nodes whose ids the Cypher list `ids` holds, in its order (see
/// `LOCK`), and reads nothing; the statement goes on once it holds them all.
fn lock_nodes(ids: &str) -> String {
    format!("CALL () {{ UNWIND {ids} AS id MATCH (n:Node {{id: id}}) {LOCK} RETURN count(*) AS locked }}")
}

/// How many times a change set that takes the change lock runs when Neo4j breaks a deadlock
/// between its node locks and another change set's by failing it.
const LOCKED_TRIES: usize = 3;

/// How many changes a change set may hold to run again after a deadlock: it keeps a copy of
/// them for that. A larger one (a copy of a whole graph) fails with the deadlock instead, as
/// `Unavailable`, and may be sent again.
const RETRIED_CHANGES: usize = 1_000;

pub(super) async fn apply(
    graph: &Graph,
    patience: Duration,
    sent: &AtomicU64,
    changes: Vec<Change>,
    now: DateTime<Utc>,
    actor: Option<&Actor>,
) -> Result<Vec<Applied>, Failed> {
    if read_first_fits(&changes) {
        // What the statement on a supposition read, when the graph was not as supposed.
        let mut read = match supposed::apply(graph, patience, sent, &changes, now, actor).await? {
            Supposed::Written(applied) => return Ok(applied),
            Supposed::Unlike(rows) => Some(rows),
            Supposed::Unsaid => None,
        };
        for _ in 0..READ_FIRST_TRIES {
            match read_first(graph, patience, sent, &changes, now, actor, read.take()).await? {
                Attempt::Ended(outcome) => return outcome,
                Attempt::Changed => continue,
                Attempt::NeedsLock => break,
            }
        }
    }
    let last = changes.len().saturating_sub(1);
    let tries = if changes.len() <= RETRIED_CHANGES { LOCKED_TRIES } else { 1 };
    let mut changes = Some(changes);
    // The caller's confirmation, if it is still to come, is awaited while the first transaction
    // opens (a round trip that neither locks nor writes); refused, it is rolled back unused.
    let mut confirmation = Some(confirm(actor));
    for tries_left in (0..tries).rev() {
        let changes = if tries_left == 0 { changes.take() } else { changes.clone() }.unwrap_or_default();
        let mut writer = match confirmation.take() {
            Some(confirmed) => match tokio::join!(confirmed, Neo4jWriter::start(graph, patience, sent)) {
                (Ok(()), writer) => writer?,
                (Err(refused), Ok(writer)) => return writer.end(Err(refused), last).await,
                (Err(refused), Err(_)) => return Err(refused),
            },
            None => Neo4jWriter::start(graph, patience, sent).await?,
        };
        let outcome = match writer.prepare(&changes).await {
            Ok(()) => apply_changes(&mut writer, changes, now, actor).await,
            Err(error) => Err(Failed { index: 0, error }),
        };
        match writer.end(outcome, last).await {
            Err(failed) if tries_left > 0 && deadlocked(&failed.error) => continue,
            ended => return ended,
        }
    }
    unreachable!("the last try returns")
}

/// Whether Neo4j failed a statement to break a deadlock between transactions' locks: nothing
/// of the transaction was kept, and it may run again as it stands.
fn deadlocked(error: &Error) -> bool {
    let Error::Unavailable(cause) = error else { return false };
    matches!(cause.downcast_ref::<neo4rs::Error>(), Some(neo4rs::Error::Neo4j(e)) if e.code().contains("DeadlockDetected"))
}

/// Whether the statement that ends a change set read first failed only because another change
/// set got there first: a deadlock between their node locks, or a node of the same id created
/// meanwhile (in the instant between the check and the write: the check's read of the id waits
/// for a creation under way). Nothing was written, and the change set runs again on what it then
/// reads.
fn overtaken(error: &Error) -> bool {
    deadlocked(error) || matches!(error, Error::Conflict(_))
}

/// How many times a change set is read first and found changed before it takes the lock to read.
const READ_FIRST_TRIES: usize = 3;

/// How many changes a change set read first may hold at most: the statement that ends it checks
/// everything it read, and writes everything at once.
const READ_FIRST_CHANGES: usize = 64;

/// Whether a change set may be read first: small, and only creating nodes and linking them,
/// which the rules decide on the nodes and relationships read up front. Others (updates,
/// deletions, unlinking) read or write as they go, and so take the lock first.
fn read_first_fits(changes: &[Change]) -> bool {
    changes.len() <= READ_FIRST_CHANGES && changes.iter().all(|c| matches!(c, Change::Create(_) | Change::Link(_)))
}

/// How a change set read first went.
enum Attempt {
    /// It was written, or refused by the rules, on what it read, still unchanged under the lock.
    Ended(Result<Vec<Applied>, Failed>),
    /// Another change set changed what it read before it took the lock; nothing was written.
    Changed,
    /// The rules needed more than what was read up front (a foreign end, a missing node's
    /// organisation); nothing was written.
    NeedsLock,
}

/// Runs a change set without the change lock until its last statement: one statement reads, out
/// of any transaction, what the rules need; the rules run on it; then one statement takes the
/// lock, checks that every node and relationship read is still exactly as read, and only then
/// writes the changes with their audit entry (all or nothing: it is a transaction of its own).
/// The lock is so held for one statement, where a change set that takes it first holds it from
/// its first statement to its commit. A refusal by the rules is checked the same way, so that
/// it rests on the graph as it stood under the lock, as it would have otherwise. `read` is what
/// the statement on a supposition read (`supposed`), which the first statement would read again.
async fn read_first(
    graph: &Graph,
    patience: Duration,
    sent: &AtomicU64,
    changes: &[Change],
    now: DateTime<Utc>,
    actor: Option<&Actor>,
    read: Option<Vec<Row>>,
) -> Result<Attempt, Failed> {
    let mut writer = Neo4jWriter::planning(sent);
    if let Some(reads) = writer.reads(changes) {
        let rows = match read {
            Some(rows) => rows,
            None => {
                auto_commit(graph, patience, sent, reads.query).await.map_err(|error| Failed { index: 0, error })?
            }
        };
        writer.learn(&rows, reads.ids, reads.keys).map_err(|error| Failed { index: 0, error })?;
    }
    let outcome = apply_changes(&mut writer, changes.to_vec(), now, actor).await;
    if writer.needs_lock {
        return Ok(Attempt::NeedsLock);
    }
    let last = match &outcome {
        Ok(_) => changes.len().saturating_sub(1),
        Err(failed) => failed.index,
    };
    // The caller's API token, if no answer on it is in yet, is checked by the statement that
    // writes, which writes only while it stands. Otherwise what was read and decided so far ran
    // alongside the caller's confirmation, and the statement that writes waits for it.
    let token = unconfirmed_token(actor);
    if token.is_none() {
        confirm(actor).await?;
    }
    let at_last = |error: Error| Failed { index: last, error };
    let writes = match outcome {
        Ok(_) => writer.queued().map_err(at_last)?,
        Err(_) => Batch::default(),
    };
    let rows = match auto_commit(graph, patience, sent, writer.checked(writes, token)).await {
        Err(error) if overtaken(&error) => return Ok(Attempt::Changed),
        rows => rows.map_err(at_last)?,
    };
    if rows.is_empty() {
        // Something read changed, or the token no longer stands: the confirmation, asked apart,
        // tells which. A token that stands makes this a change set to run again.
        confirm(actor).await?;
        return Ok(Attempt::Changed);
    }
    if let Some(token) = token {
        token.confirmation.confirm_seen(Caller::Member(token.member.clone()));
    }
    Ok(Attempt::Ended(outcome))
}

/// The clause that opens the last statement of a change set read first: it answers no row while
/// an import runs (`(:Importing)`), or when the caller's token, if there is one to check, no
/// longer stands as admitted. The token is so checked before any lock is taken.
fn unguarded(token: Option<TokenCheck>) -> String {
    let standing = match token {
        Some(_) => {
            "AND EXISTS { MATCH (t:ApiToken {hash: $tokenHash}) WHERE t.revokedAt IS NULL \
             AND t.organisation = $tokenOrganisation AND t.role = $tokenRole AND 'token:' + t.id = $tokenSubject }"
        }
        None => "",
    };
    format!("WITH 0 AS go WHERE NOT EXISTS {{ MATCH (:Importing) }} {standing}")
}

/// The parameters `unguarded` names.
fn with_token(query: Query, token: Option<TokenCheck>) -> Query {
    match token {
        Some(TokenCheck { confirmation, member }) => query
            .param("tokenHash", confirmation.token_hash())
            .param("tokenOrganisation", member.organisation.as_str())
            .param("tokenRole", member.role.as_str())
            .param("tokenSubject", member.subject.as_str()),
        None => query,
    }
}

/// An API token the statement that writes a change set checks, with whom it must name.
#[derive(Clone, Copy)]
struct TokenCheck<'a> {
    confirmation: &'a Confirmation,
    member: &'a Member,
}

/// The actor's API token, when the store has still to hear whether it stands.
fn unconfirmed_token(actor: Option<&Actor>) -> Option<TokenCheck<'_>> {
    let actor = actor?;
    let confirmation = actor.confirmation.as_ref().filter(|c| !c.is_settled())?;
    Some(TokenCheck { confirmation, member: actor.caller.member()? })
}

/// Waits for the actor's confirmation, if one is to come (`Actor::confirmation`): nothing is
/// written, and no lock taken, before it passes.
async fn confirm(actor: Option<&Actor>) -> Result<(), Failed> {
    let Some(actor) = actor else { return Ok(()) };
    crate::domain::confirmed(actor.confirmation.as_ref(), &actor.caller)
        .await
        .map_err(|error| Failed { index: 0, error })
}

/// Runs one statement of a change set in a transaction of its own and reads every row.
async fn auto_commit(graph: &Graph, patience: Duration, sent: &AtomicU64, query: Query) -> Result<Vec<Row>> {
    sent.fetch_add(1, Ordering::Relaxed);
    super::auto_commit(graph, patience, query).await
}

/// Applies a change set that arrives in batches. Each batch is read up front
/// and written out before the next, and what the writer knew of it is then
/// forgotten, so memory holds one batch at a time.
///
/// An import takes the change lock, and a committed `(:Importing)` node tells
/// change sets read first, which do not take it, to take it too while the
/// import runs.
///
/// Into a store that holds a graph, the whole change set is one transaction.
/// Into an empty store it is not: Neo4j caps the memory of one transaction, and
/// a large file outgrows the cap, so each batch commits in a transaction of its
/// own while a separate transaction holds the change lock for the whole
/// import (no other change set runs meanwhile). If a batch is
/// refused, or the file ends badly, everything the import wrote is deleted
/// again (the store was empty before), so the import as a whole still lands
/// entirely or not at all; readers may see the graph grow while it runs.
pub(super) async fn import(
    graph: &Graph,
    patience: Duration,
    sent: &AtomicU64,
    mut batches: ChangeBatches,
    now: DateTime<Utc>,
) -> Result<usize, Failed> {
    let mut lock = Neo4jWriter::start(graph, patience, sent).await?;
    let empty = lock.is_empty().await.map_err(|error| Failed { index: 0, error });
    // That statement took the change lock, if it answered.
    let holds_lock = empty.is_ok();
    // Committed before the import locks any node, so that change sets read first stay out of its
    // way; one left behind by an import that stopped half-way is taken over (this one holds the
    // change lock, so no other import runs).
    let importing = match empty {
        Ok(_) => auto_commit(graph, patience, sent, neo4rs::query("MERGE (:Importing {id: 1})")).await,
        Err(_) => Ok(Vec::new()),
    };
    let mut set = ChangeSet::new(now);
    let outcome = match (empty, importing) {
        (Err(failed), _) => Err(failed),
        (_, Err(error)) => Err(Failed { index: 0, error }),
        (Ok(false), Ok(_)) => {
            let outcome: Result<usize, Failed> = async {
                while let Some(batch) = next_batch(batches.recv().await, set.applied())? {
                    lock.apply_batch(&mut set, batch).await?;
                    lock.forget();
                }
                let applied = set.applied();
                set.finish()?;
                Ok(applied)
            }
            .await;
            let last = outcome.as_ref().map_or(0, |applied| applied.saturating_sub(1));
            let outcome = lock.end(outcome, last).await;
            return imported(graph, patience, sent, outcome).await;
        }
        (Ok(true), Ok(_)) => {
            let outcome: Result<usize, Failed> = async {
                while let Some(batch) = next_batch(batches.recv().await, set.applied())? {
                    let mut writer = Neo4jWriter::open(graph, patience, sent, set.applied()).await?;
                    let applied = writer.apply_batch(&mut set, batch).await;
                    let last = set.applied().saturating_sub(1);
                    writer.end(applied, last).await?;
                }
                let applied = set.applied();
                set.finish()?;
                Ok(applied)
            }
            .await;
            match outcome {
                Err(failed) => Err(match remove_everything(graph, sent).await {
                    Ok(()) => failed,
                    Err(e) => Failed {
                        index: failed.index,
                        error: Error::Unavailable(anyhow::anyhow!(
                            "{}; removing what the import wrote before that failed too ({e}): \
                             the store holds part of the file, empty it before importing again",
                            failed.error
                        )),
                    },
                }),
                ok => ok,
            }
        }
    };
    // The lock's transaction wrote nothing else: end it either way.
    let last = outcome.as_ref().map_or(0, |applied| applied.saturating_sub(1));
    let outcome = lock.end(outcome, last).await;
    match holds_lock {
        true => imported(graph, patience, sent, outcome).await,
        // Without the change lock (it could not be had in time: another import may hold it),
        // any `(:Importing)` is not this import's to remove.
        false => outcome,
    }
}

/// Says that the import has ended, however it went, by removing `(:Importing)`.
async fn imported(
    graph: &Graph,
    patience: Duration,
    sent: &AtomicU64,
    outcome: Result<usize, Failed>,
) -> Result<usize, Failed> {
    let done = neo4rs::query("MATCH (i:Importing) DELETE i");
    if let Err(e) = auto_commit(graph, patience, sent, done).await {
        tracing::warn!(error = %e, "the import could not say it has ended: change sets read first \
            will take the change lock instead, until the next import");
    }
    outcome
}

/// Deletes every node and relationship of the graph, a slice per transaction
/// (one transaction for a large graph would outgrow the memory cap too).
async fn remove_everything(graph: &Graph, sent: &AtomicU64) -> Result<()> {
    loop {
        let mut slice = Neo4jWriter::with(Some(graph.start_txn().await.map_err(db)?), sent);
        // The stubs of foreign ends it wrote go too (never the change lock).
        let query = neo4rs::query(
            "MATCH (n) WHERE n:Node OR n:ForeignNode WITH n LIMIT 5000 DETACH DELETE n RETURN count(*) AS gone",
        );
        let gone: i64 = match slice.rows(query).await?.first() {
            Some(row) => row.get("gone").map_err(corrupt)?,
            None => 0,
        };
        slice.txn.take().expect("a slice's transaction").commit().await.map_err(db)?;
        if gone == 0 {
            return Ok(());
        }
    }
}

type EdgeKey = (NodeId, RelationshipKind, NodeId);

/// The statement that reads what a change set names, and what it names.
struct Reads {
    query: Query,
    ids: Vec<NodeId>,
    keys: Vec<EdgeKey>,
}

/// The ids of the nodes a change set's rules read, in order and each once (as every change set
/// locks nodes, see the module doc), and the keys of the relationships they check, each once.
fn named(changes: &[Change]) -> (Vec<NodeId>, Vec<EdgeKey>) {
    let mut ids: Vec<NodeId> = Vec::new();
    let mut keys: Vec<EdgeKey> = Vec::new();
    for change in changes {
        match change {
            Change::Create(node) => {
                ids.push(node.id.clone());
                if node.kind() != NodeKind::Organisation
                    && let Ok(owner) = NodeId::organisation_node(node.organisation())
                {
                    ids.push(owner);
                }
            }
            Change::Update { id, .. } | Change::Delete(id) => ids.push(id.clone()),
            Change::Link(edge) => {
                ids.extend([edge.from.clone(), edge.to.clone()]);
                ids.extend(edge.influence.iter().flat_map(|i| i.sources.iter().cloned()));
                keys.push((edge.from.clone(), edge.kind, edge.to.clone()));
            }
            Change::Unlink { from, kind, to } => {
                ids.extend([from.clone(), to.clone()]);
                keys.push((from.clone(), *kind, to.clone()));
            }
        }
    }
    ids.sort_unstable();
    ids.dedup();
    let mut once = HashSet::new();
    keys.retain(|key| once.insert(key.clone()));
    (ids, keys)
}

/// The clauses that read the nodes whose ids `$ids` lists, each locked with `lock` (`LOCK`, or
/// nothing) before it is read, as `nodes`, and the relationships whose keys `$keys` lists, as
/// `edges`: one row, lists possibly empty.
fn read_clauses(lock: &str) -> String {
    format!(
        "CALL () {{ UNWIND $ids AS id MATCH (n:Node {{id: id}}) {lock} RETURN collect(n{NODE_MAP}) AS nodes }}
         CALL () {{
           UNWIND $keys AS key
           CALL (key) {{ {} }}
           RETURN collect({EDGE_MAP}) AS edges
         }}",
        edge_arms("key", "RETURN a, r, b")
    )
}

/// Relationship keys as a list parameter of maps `{from, kind, to}`, each with `edge` when `with`
/// gives one for it.
fn key_list(keys: &[EdgeKey], mut with: impl FnMut(&EdgeKey) -> Option<BoltType>) -> Vec<BoltType> {
    keys.iter()
        .map(|key| {
            let (from, kind, to) = key;
            let mut map = HashMap::from([
                ("from", BoltType::from(from.as_str())),
                ("kind", BoltType::from(kind.as_str())),
                ("to", BoltType::from(to.as_str())),
            ]);
            if let Some(edge) = with(key) {
                map.insert("edge", edge);
            }
            BoltType::from(map)
        })
        .collect()
}

/// The relationship `key` names, as `(a)-[r]->(b)`, then `then`: either end may be a foreign
/// stub, and each arm of the union seeks both ends by their label's index.
fn edge_arms(key: &str, then: &str) -> String {
    [("Node", "Node"), ("Node", "ForeignNode"), ("ForeignNode", "Node")]
        .map(|(from, to)| {
            format!(
                "MATCH (a:{from} {{id: {key}.from}})-[r]->(b:{to} {{id: {key}.to}}) WHERE type(r) = {key}.kind {then}"
            )
        })
        .join(" UNION ")
}

/// The open transaction and what it knows.
struct Neo4jWriter<'s> {
    /// `None` while a change set read first is planned: every read and write is then answered
    /// from, or queued in, memory, and any that cannot be sets `needs_lock`.
    txn: Option<Txn>,
    /// Whether the change set, read first, needed a statement of its own along the way.
    needs_lock: bool,
    /// What a change set read first read, to be checked under the lock: each node id with the
    /// node's map as read (`NODE_MAP`, or null), each relationship's key with its map as read
    /// (`EDGE_MAP`, or null).
    seen_nodes: Vec<BoltType>,
    seen_edges: Vec<BoltType>,
    /// Whether the change lock is still to be taken, by the next statement.
    unlocked: bool,
    /// The store's count of statements sent by change sets.
    sent: &'s AtomicU64,
    /// Nodes by id as they stand in this transaction (`None`: there is none).
    known: HashMap<NodeId, Option<Node>>,
    /// Relationships by (from, kind, to) as they stand in this transaction.
    links: HashMap<EdgeKey, Option<Edge>>,
    /// Nodes created in this transaction: no relationship of theirs predates it.
    created: HashSet<NodeId>,
    /// Writes queued for the next flush.
    new_nodes: Vec<Node>,
    new_edges: Vec<Edge>,
    /// The audit entry, written with the last queued changes.
    audit: Option<AuditEntry>,
}

impl<'s> Neo4jWriter<'s> {
    /// Opens the transaction; its first statement takes the change lock for the rest of it.
    async fn start(graph: &Graph, patience: Duration, sent: &'s AtomicU64) -> Result<Neo4jWriter<'s>, Failed> {
        let mut writer = Neo4jWriter::open(graph, patience, sent, 0).await?;
        writer.unlocked = true;
        Ok(writer)
    }

    /// Opens a transaction without the change lock, for an import's batch
    /// while the import holds the lock; `index` is the batch's first change.
    async fn open(
        graph: &Graph,
        patience: Duration,
        sent: &'s AtomicU64,
        index: usize,
    ) -> Result<Neo4jWriter<'s>, Failed> {
        let fail = |error: Error| Failed { index, error };
        let txn = tokio::time::timeout(patience, graph.start_txn())
            .await
            .map_err(|_| fail(unavailable("no transaction could be started in time")))?
            .map_err(|e| fail(db(e)))?;
        Ok(Neo4jWriter::with(Some(txn), sent))
    }

    /// A writer without a transaction, for a change set read first.
    fn planning(sent: &'s AtomicU64) -> Neo4jWriter<'s> {
        Neo4jWriter::with(None, sent)
    }

    fn with(txn: Option<Txn>, sent: &'s AtomicU64) -> Neo4jWriter<'s> {
        Neo4jWriter {
            txn,
            needs_lock: false,
            seen_nodes: Vec::new(),
            seen_edges: Vec::new(),
            unlocked: false,
            sent,
            known: HashMap::new(),
            links: HashMap::new(),
            created: HashSet::new(),
            new_nodes: Vec::new(),
            new_edges: Vec::new(),
            audit: None,
        }
    }

    async fn is_empty(&mut self) -> Result<bool> {
        let rows = self.rows(neo4rs::query("RETURN NOT EXISTS { MATCH (n:Node) } AS empty")).await?;
        rows.first().ok_or_else(|| corrupt("no row"))?.get("empty").map_err(corrupt)
    }

    /// Reads what a batch of an import names, applies it and writes it out.
    async fn apply_batch(&mut self, set: &mut ChangeSet, batch: Vec<Change>) -> Result<(), Failed> {
        let at = |index: usize| move |error: Error| Failed { index, error };
        self.prepare(&batch).await.map_err(at(set.applied()))?;
        set.apply(self, batch, |_| {}).await?;
        self.flush().await.map_err(at(set.applied().saturating_sub(1)))
    }

    /// Writes what is queued and commits when `outcome` is a success, rolls back otherwise.
    /// `last` is the index of the last change, which the queued writes belong to.
    async fn end<T>(mut self, outcome: Result<T, Failed>, last: usize) -> Result<T, Failed> {
        let fail = |error: Error| Failed { index: last, error };
        let outcome = match outcome {
            Ok(done) => self.flush().await.map(|()| done).map_err(fail),
            Err(failed) => Err(failed),
        };
        let Some(txn) = self.txn.take() else { return outcome };
        match outcome {
            Ok(done) => {
                txn.commit().await.map_err(|e| fail(db(e)))?;
                Ok(done)
            }
            Err(failed) => {
                // After a failed statement the server has already ended the
                // transaction and ignores the rollback; either way nothing is kept.
                if let Err(e) = txn.rollback().await {
                    tracing::debug!(error = %e, "rolling back a failed change set");
                }
                Err(failed)
            }
        }
    }

    /// Forgets what the writer learnt, once its writes are flushed: what it
    /// needs again it reads back from the transaction.
    fn forget(&mut self) {
        self.known.clear();
        self.links.clear();
        self.created.clear();
    }

    /// The query as it is sent: counted, and opened by `TAKE_LOCK` if the lock is still to be taken.
    fn sending(&mut self, query: Query) -> Query {
        self.sent.fetch_add(1, Ordering::Relaxed);
        if !std::mem::take(&mut self.unlocked) {
            return query;
        }
        neo4rs::query(&format!("{TAKE_LOCK}{}", query.query())).with_params(query.get_params().clone())
    }

    /// The open transaction; without one (a change set read first), notes that the change set
    /// needs the lock, and fails the change.
    fn txn(&mut self) -> Result<&mut Txn> {
        if self.txn.is_none() {
            self.needs_lock = true;
        }
        self.txn.as_mut().ok_or_else(|| Error::internal(anyhow::anyhow!("the change set needs the change lock")))
    }

    /// Runs a statement and reads its rows: two round trips (RUN, then PULL).
    async fn rows(&mut self, query: Query) -> Result<Vec<Row>> {
        self.txn()?;
        let query = self.sending(query);
        let txn = self.txn()?;
        let mut stream = txn.execute(query).await.map_err(db)?;
        let mut rows = Vec::new();
        while let Some(row) = stream.next(txn.handle()).await.map_err(db)? {
            rows.push(row);
        }
        Ok(rows)
    }

    /// Runs a statement whose rows nobody reads: one round trip (RUN and DISCARD together).
    async fn run(&mut self, query: Query) -> Result<()> {
        self.txn()?;
        let query = self.sending(query);
        self.txn()?.run(query).await.map_err(db)?;
        Ok(())
    }

    /// Reads every node and relationship the changes name.
    async fn prepare(&mut self, changes: &[Change]) -> Result<()> {
        let Some(read) = self.reads(changes) else { return Ok(()) };
        let rows = self.rows(read.query).await?;
        self.learn(&rows, read.ids, read.keys)
    }

    /// The statement that reads every node and relationship the changes name, if they name any.
    fn reads(&self, changes: &[Change]) -> Option<Reads> {
        let (ids, keys) = named(changes);
        if ids.is_empty() && keys.is_empty() {
            return None;
        }
        // In a transaction, each node is locked before it is read; read first, nothing is.
        let lock = if self.txn.is_some() { LOCK } else { "" };
        let query = neo4rs::query(&format!("{} RETURN nodes, edges", read_clauses(lock)))
            .param("ids", id_list(&ids))
            .param("keys", key_list(&keys, |_| None));
        Some(Reads { query, ids, keys })
    }

    /// Learns what `reads` read; a writer without a transaction also keeps it as read, for the
    /// check under the lock.
    fn learn(&mut self, rows: &[Row], ids: Vec<NodeId>, keys: Vec<EdgeKey>) -> Result<()> {
        let row = rows.first().ok_or_else(|| corrupt("the read of a change set's nodes returned no row"))?;
        let keep = self.txn.is_none();
        let mut seen: HashMap<NodeId, BoltType> = HashMap::new();
        self.known.extend(ids.iter().map(|id| (id.clone(), None)));
        for map in row.get::<Vec<BoltType>>("nodes").map_err(corrupt)? {
            let node = NodeRow::deserialize((&map).into_deserializer()).map_err(corrupt)?.into_node()?;
            if keep {
                seen.insert(node.id.clone(), map);
            }
            self.known.insert(node.id.clone(), Some(node));
        }
        let mut seen_edges: HashMap<EdgeKey, BoltType> = HashMap::new();
        self.links.extend(keys.iter().map(|key| (key.clone(), None)));
        for map in row.get::<Vec<BoltType>>("edges").map_err(corrupt)? {
            let edge = EdgeRow::deserialize((&map).into_deserializer()).map_err(corrupt)?.into_edge()?;
            if keep {
                seen_edges.insert(edge_key(&edge), map);
            }
            self.links.insert(edge_key(&edge), Some(edge));
        }
        if keep {
            self.seen_nodes = ids
                .iter()
                .map(|id| {
                    let node = seen.remove(id).unwrap_or(BoltType::Null(neo4rs::BoltNull));
                    BoltType::from(HashMap::from([("id", BoltType::from(id.as_str())), ("node", node)]))
                })
                .collect();
            self.seen_edges = key_list(&keys, |key| seen_edges.remove(key));
        }
        Ok(())
    }

    /// The statement that ends a change set read first: it locks the nodes read, in the order of
    /// their ids, checks that every node and relationship read is still as read, and only then
    /// writes; it answers one row when all was unchanged, none otherwise. What was read goes into
    /// the statement, so a writer checks once. While an import runs (`(:Importing)`), it locks
    /// nothing and counts as changed, and after its tries takes the change lock, which the
    /// import holds: it neither lands where a failing import would delete it nor holds nodes an
    /// import is to lock.
    fn checked(&mut self, writes: Batch, token: Option<TokenCheck>) -> Query {
        let query = format!(
            "{}
             {}
             CALL () {{
               UNWIND $seenNodes AS seen
               OPTIONAL MATCH (n:Node {{id: seen.id}})
               WITH seen, n{NODE_MAP} AS now
               WHERE NOT coalesce(now = seen.node, now IS NULL AND seen.node IS NULL)
               RETURN count(*) AS changedNodes
             }}
             CALL () {{
               UNWIND $seenEdges AS key
               WITH key, COLLECT {{ {} }} AS now
               WHERE NOT coalesce(now = CASE WHEN key.edge IS NULL THEN [] ELSE [key.edge] END, false)
               RETURN count(*) AS changedEdges
             }}
             WITH changedNodes + changedEdges = 0 AS unchanged WHERE unchanged
             {}
             RETURN unchanged",
            unguarded(token),
            lock_nodes("[seen IN $seenNodes | seen.id]"),
            edge_arms("key", &format!("RETURN {EDGE_MAP} AS edge")),
            writes.text
        );
        let query = neo4rs::query(&query)
            .params(writes.params)
            .param("seenNodes", std::mem::take(&mut self.seen_nodes))
            .param("seenEdges", std::mem::take(&mut self.seen_edges));
        with_token(query, token)
    }

    /// Writes the queued nodes, then the queued relationships, then the audit entry if there is
    /// one, all in one statement.
    async fn flush(&mut self) -> Result<()> {
        match self.queued()?.into_query() {
            Some(query) => self.run(query).await,
            None => Ok(()),
        }
    }

    /// The writes queued so far, taken from the queue.
    fn queued(&mut self) -> Result<Batch> {
        let mut batch = Batch::default();
        let nodes = std::mem::take(&mut self.new_nodes);
        for &kind in NodeKind::ALL {
            let of_kind: Vec<&Node> = nodes.iter().filter(|n| n.kind() == kind).collect();
            for chunk in of_kind.chunks(BATCH) {
                let rows = chunk.iter().map(|n| node_properties(n)).collect::<Result<Vec<BoltType>>>()?;
                // The kind label is a closed word from the Rust enum.
                batch.add(&format!("UNWIND $rows AS props CREATE (n:Node:{}) SET n = props", kind.type_name()), rows);
            }
        }
        let edges = std::mem::take(&mut self.new_edges);
        for &kind in RelationshipKind::ALL {
            let of_kind: Vec<&Edge> = edges.iter().filter(|e| e.kind == kind).collect();
            for chunk in of_kind.chunks(BATCH) {
                let rows: BoltType = chunk
                    .iter()
                    .map(|e| {
                        BoltType::from(HashMap::from([
                            ("from", BoltType::from(e.from.as_str())),
                            ("to", BoltType::from(e.to.as_str())),
                            ("props", edge_properties(e)),
                        ]))
                    })
                    .collect();
                // The relationship type is a closed word from the Rust enum. Both ends were read
                // under the lock or written by this change set; were one missing all the same,
                // CREATE refuses a missing end, and the change set fails rather than lose it.
                batch.add(
                    &format!(
                        "UNWIND $rows AS row
                         OPTIONAL MATCH (a:Node {{id: row.from}}) OPTIONAL MATCH (b:Node {{id: row.to}})
                         CREATE (a)-[r:{}]->(b) SET r = row.props",
                        kind.as_str()
                    ),
                    rows,
                );
            }
        }
        if let Some(entry) = self.audit.take() {
            batch.add("CREATE (entry:AuditEntry) SET entry = $rows", audit_properties(&entry));
        }
        Ok(batch)
    }

    /// Flushes when the queue is full.
    async fn maybe_flush(&mut self) -> Result<()> {
        if self.new_nodes.len() + self.new_edges.len() >= BATCH {
            self.flush().await?;
        }
        Ok(())
    }
}

/// Write statements gathered into one: each a unit subquery (`CALL () { … }`) with its one list
/// parameter, `$rows` in the part's text, renamed to be its own.
#[derive(Default)]
struct Batch {
    text: String,
    params: Vec<(String, BoltType)>,
}

impl Batch {
    fn add(&mut self, part: &str, rows: impl Into<BoltType>) {
        let name = format!("rows{}", self.params.len());
        self.text.push_str(&format!("CALL () {{ {} }}\n", part.replace("$rows", &format!("${name}"))));
        self.params.push((name, rows.into()));
    }

    fn into_query(self) -> Option<Query> {
        (!self.params.is_empty()).then(|| neo4rs::query(&self.text).params(self.params))
    }
}

/// The properties a node is stored with; see the module doc.
pub(crate) fn node_properties(node: &Node) -> Result<BoltType> {
    let details = node.details.to_json();
    let mut props: HashMap<&'static str, BoltType> = HashMap::from([
        ("id", node.id.as_str().into()),
        ("kind", node.kind().as_str().into()),
        ("organisation", node.organisation().into()),
        ("title", node.title.as_str().into()),
        ("titleFold", node.title.to_lowercase().into()),
        ("description", node.description.as_str().into()),
        ("tags", node.tags.clone().into()),
        ("visibility", node.visibility.as_str().into()),
        ("assertion", node.assertion.as_str().into()),
        ("createdAt", timestamp(node.created_at).into()),
        ("updatedAt", timestamp(node.updated_at).into()),
        // For the check of a change set on a supposition (`supposed`): the rule on influences in Cypher.
        ("existedSince", node.existed_since().to_string().into()),
        ("searchText", search_text(node).into()),
    ]);
    for (field, value) in &details {
        if let Some(property) = field_property(node.kind(), field) {
            props.insert(property, BoltType::try_from(value.clone()).map_err(Error::internal)?);
        }
    }
    props.insert("details", Json::Object(details).to_string().into());
    Ok(props.into())
}

/// The properties a relationship is stored with; see the module doc.
pub(crate) fn edge_properties(edge: &Edge) -> BoltType {
    let mut props: HashMap<&'static str, BoltType> =
        HashMap::from([("assertion", edge.assertion.as_str().into()), ("props", edge.stored_properties().into())]);
    if let Some(influence) = &edge.influence {
        props.insert("on", influence.on.to_string().into());
        props.insert("sources", influence.sources.iter().map(|s| s.as_str()).collect());
    }
    props.into()
}

fn edge_key(edge: &Edge) -> EdgeKey {
    (edge.from.clone(), edge.kind, edge.to.clone())
}

/// Matches the relationship `from -[kind]-> to` as `(a)-[r]->(b)`, then does `then`.
fn matching_edge(from: &NodeId, kind: RelationshipKind, to: &NodeId, foreign: Option<ForeignEnd>, then: &str) -> Query {
    let (a, b) = match foreign {
        None => ("Node", "Node"),
        Some(ForeignEnd::From) => ("ForeignNode", "Node"),
        Some(ForeignEnd::To) => ("Node", "ForeignNode"),
    };
    neo4rs::query(&format!("MATCH (a:{a} {{id: $from}})-[r]->(b:{b} {{id: $to}}) WHERE type(r) = $kind {then}"))
        .param("from", from.as_str())
        .param("kind", kind.as_str())
        .param("to", to.as_str())
}

impl Neo4jWriter<'_> {
    /// Writes a relationship with a foreign end at once, making the end's stub when it has none.
    async fn insert_foreign_edge(&mut self, edge: &Edge, end: ForeignEnd) -> Result<()> {
        // The local end may still be queued.
        self.flush().await?;
        let (local, outgoing, far) = end.split(&edge.from, &edge.to);
        let arrow = if outgoing { "(l)-[r:KIND]->(f)" } else { "(f)-[r:KIND]->(l)" };
        // The relationship type is a closed word from the Rust enum.
        let query = neo4rs::query(&format!(
            "MATCH (l:Node {{id: $local}})
             MERGE (f:ForeignNode {{id: $foreign}})
               ON CREATE SET f.organisation = $organisation, f.kind = $kind
             CREATE {}
             SET r = $props",
            arrow.replace("KIND", edge.kind.as_str())
        ))
        .param("local", local.as_str())
        .param("foreign", far.as_str())
        .param("organisation", far.organisation())
        .param("kind", far.kind().as_str())
        .param("props", edge_properties(edge));
        self.run(query).await
    }

    /// Removes the stubs of these foreign ids that no relationship reaches any more.
    async fn drop_stubs(&mut self, ids: &[&NodeId]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let ids: Vec<&str> = ids.iter().map(|id| id.as_str()).collect();
        let query =
            neo4rs::query("UNWIND $ids AS id MATCH (f:ForeignNode {id: id}) WHERE NOT EXISTS { (f)--() } DELETE f")
                .param("ids", ids);
        self.run(query).await
    }
}

#[async_trait::async_trait]
impl Writer for Neo4jWriter<'_> {
    /// Queues the entry: the rules ask for it last, and it is written with the last changes.
    async fn record_audit(&mut self, entry: &AuditEntry) -> Result<()> {
        self.audit = Some(entry.clone());
        Ok(())
    }

    async fn node(&mut self, id: &NodeId) -> Result<Option<Node>> {
        if let Some(known) = self.known.get(id) {
            return Ok(known.clone());
        }
        let query = neo4rs::query(&format!("MATCH (n:Node {{id: $id}}) {LOCK} RETURN n{NODE_MAP} AS node"))
            .param("id", id.as_str());
        let node = super::read::nodes(&self.rows(query).await?)?.pop();
        self.known.insert(id.clone(), node.clone());
        Ok(node)
    }

    async fn insert_node(&mut self, node: &Node) -> Result<()> {
        self.known.insert(node.id.clone(), Some(node.clone()));
        self.created.insert(node.id.clone());
        self.new_nodes.push(node.clone());
        self.maybe_flush().await
    }

    async fn replace_node(&mut self, node: &Node) -> Result<()> {
        self.flush().await?;
        let query = neo4rs::query("MATCH (n:Node {id: $id}) SET n = $props")
            .param("id", node.id.as_str())
            .param("props", node_properties(node)?);
        self.run(query).await?;
        self.known.insert(node.id.clone(), Some(node.clone()));
        Ok(())
    }

    async fn delete_node(&mut self, id: &NodeId) -> Result<Vec<Edge>> {
        self.flush().await?;
        // The other end is a node or a foreign stub.
        let query = neo4rs::query(
            "MATCH (n:Node {id: $id})
             WITH n,
                  [(n)-[r]->(b) WHERE b:Node OR b:ForeignNode
                     | {src: n.id, kind: type(r), dst: b.id, assertion: r.assertion, props: r.props}] AS outs,
                  [(a)-[r]->(n) WHERE a:Node OR a:ForeignNode
                     | {src: a.id, kind: type(r), dst: n.id, assertion: r.assertion, props: r.props}] AS ins
             DETACH DELETE n
             RETURN outs, ins",
        )
        .param("id", id.as_str());
        let rows = self.rows(query).await?;
        self.known.insert(id.clone(), None);
        // A node of the same id created later in this change set starts without relationships.
        self.created.insert(id.clone());
        let Some(row) = rows.first() else { return Ok(Vec::new()) };
        // Leaving relationships first, then arriving ones, each by kind and other end, as SQLite gives them.
        let mut edges = Vec::new();
        for (column, out) in [("outs", true), ("ins", false)] {
            let mut some: Vec<Edge> = row
                .get::<Vec<EdgeRow>>(column)
                .map_err(corrupt)?
                .into_iter()
                .map(EdgeRow::into_edge)
                .collect::<Result<_>>()?;
            some.sort_by(|x, y| {
                let other = |e: &Edge| if out { e.to.clone() } else { e.from.clone() };
                (x.kind.as_str(), other(x)).cmp(&(y.kind.as_str(), other(y)))
            });
            edges.extend(some);
        }
        for edge in &edges {
            self.links.insert(edge_key(edge), None);
        }
        self.links.retain(|(from, _, to), _| from != id && to != id);
        let others: Vec<&NodeId> = edges.iter().map(|e| if &e.from == id { &e.to } else { &e.from }).collect();
        self.drop_stubs(&others).await?;
        Ok(edges)
    }

    async fn edge(
        &mut self,
        from: &NodeId,
        kind: RelationshipKind,
        to: &NodeId,
        foreign: Option<ForeignEnd>,
    ) -> Result<Option<Edge>> {
        let key = (from.clone(), kind, to.clone());
        if let Some(known) = self.links.get(&key) {
            return Ok(known.clone());
        }
        if self.created.contains(from) || self.created.contains(to) {
            return Ok(None);
        }
        // Its ends are locked first, so that nobody links or unlinks them meanwhile.
        let mut ends = [from.as_str(), to.as_str()];
        ends.sort_unstable();
        let find = matching_edge(from, kind, to, foreign, &format!("RETURN {EDGE_MAP} AS edge"));
        let query = neo4rs::query(&format!("{} {}", lock_nodes("$ends"), find.query()))
            .with_params(find.get_params().clone())
            .param("ends", ends.to_vec());
        let edge = super::read::edges(&self.rows(query).await?)?.pop();
        self.links.insert(key, edge.clone());
        Ok(edge)
    }

    async fn insert_edge(&mut self, edge: &Edge, foreign: Option<ForeignEnd>) -> Result<()> {
        self.links.insert(edge_key(edge), Some(edge.clone()));
        match foreign {
            None => {
                self.new_edges.push(edge.clone());
                self.maybe_flush().await
            }
            Some(end) => self.insert_foreign_edge(edge, end).await,
        }
    }

    async fn delete_edge(
        &mut self,
        from: &NodeId,
        kind: RelationshipKind,
        to: &NodeId,
        foreign: Option<ForeignEnd>,
    ) -> Result<()> {
        self.flush().await?;
        self.run(matching_edge(from, kind, to, foreign, "DELETE r")).await?;
        self.links.insert((from.clone(), kind, to.clone()), None);
        if let Some(end) = foreign {
            self.drop_stubs(&[end.split(from, to).2]).await?;
        }
        Ok(())
    }

    async fn earliest_influence(&mut self, learning: &NodeId) -> Result<Option<NaiveDate>> {
        self.flush().await?;
        let query = neo4rs::query(&format!(
            "MATCH (n:Node {{id: $id}}) {LOCK} WITH n MATCH (n)-[r:INFLUENCED]->() RETURN min(r.on) AS earliest"
        ))
        .param("id", learning.as_str());
        let rows = self.rows(query).await?;
        let earliest: Option<String> = match rows.first() {
            Some(row) => row.get("earliest").map_err(corrupt)?,
            None => None,
        };
        earliest.map(|d| d.parse::<NaiveDate>().map_err(corrupt)).transpose()
    }

    async fn has_foreign_ends_of(&mut self, organisation: &str) -> Result<bool> {
        // Foreign relationships are written at once, never queued; a stub lives only as long as
        // one of them reaches it.
        let query = neo4rs::query("RETURN EXISTS { MATCH (:ForeignNode {organisation: $organisation}) } AS any")
            .param("organisation", organisation);
        let rows = self.rows(query).await?;
        rows.first().ok_or_else(|| corrupt("no row"))?.get("any").map_err(corrupt)
    }

    async fn influences_citing(&mut self, source: &NodeId) -> Result<u64> {
        self.flush().await?;
        // The source is locked first: an influence citing it is written with it locked.
        let query = neo4rs::query(&format!(
            "{}
             MATCH ()-[r:INFLUENCED]->() WHERE $source IN r.sources RETURN count(r) AS count",
            lock_nodes("[$source]")
        ))
        .param("source", source.as_str());
        let rows = self.rows(query).await?;
        let count: i64 = rows.first().ok_or_else(|| corrupt("count returned no row"))?.get("count").map_err(corrupt)?;
        Ok(count as u64)
    }
}
