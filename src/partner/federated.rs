//! One request's view of the graph across partners. Ids name their owner, so
//! every lookup is split by owner: this instance's ids go to its store, a
//! partner's ids to that partner, all partners at once. What partners answer
//! is kept for the rest of the request, so a node or a node's relationships
//! are fetched once. Traces and paths run the same traversal as on one
//! instance (`store::traverse`) over these lookups; each step that reaches a
//! partner asks it to walk on in its own graph as deep as the trace may still
//! go, so a trace costs about one round trip per partner per change of side,
//! not one per step. What could not be reached is noted in the request's
//! `Report` and returned with the answer; nothing here fails a whole answer
//! because a partner did not answer.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::future::join_all;

use super::client::Failure;
use super::{MAX_IDS_PER_REQUEST, PartnerClient, Partners, Report, UnreachableReason, WalkRequest};
use crate::domain::{Actor, Applied, Audience, Change, Edge, Node, NodeId, NodeKind, RelationshipKind, Result};
use crate::store::traverse::{self, Neighbours};
use crate::store::{
    ApiToken, AuditEntry, AuditQuery, Direction, Failed, GraphStore, ListQuery, NodeFilter, PathRequest, Paths,
    SearchHit, SearchRequest, Store, Trace, TraceDirection, TraceRequest,
};

/// Time kept back from the deadline for the way back to the caller.
const MARGIN: Duration = Duration::from_millis(200);

/// How far a partner is asked to walk on from the ids of one lookup.
#[derive(Clone, Debug)]
struct Plan {
    direction: TraceDirection,
    via: Vec<RelationshipKind>,
    as_of: Option<chrono::NaiveDate>,
    /// Levels of nodes to expand, the looked-up ids being the first.
    levels: u32,
    max_nodes: usize,
}

impl Plan {
    /// One step, for a relationship field.
    fn one_step(direction: Direction, max_nodes: usize) -> Plan {
        Plan { direction: TraceDirection::along(direction), via: Vec::new(), as_of: None, levels: 1, max_nodes }
    }
}

/// What a request has learnt from partners so far.
#[derive(Default)]
struct Cache {
    /// Partner nodes by id; `None` when the partner did not return the node.
    nodes: HashMap<NodeId, Option<Node>>,
    /// For each partner, id and direction, every relationship that partner holds that way.
    walked: HashMap<(String, NodeId, Direction), Vec<Edge>>,
    /// Partners that failed in this request, and why; they are not asked again in it.
    failed: HashMap<String, Failure>,
}

pub struct Federated {
    inner: Store,
    partners: Arc<Partners>,
    deadline: Instant,
    report: Report,
    cache: Mutex<Cache>,
}

impl Federated {
    /// A request's view over `inner` and the partners; what cannot be reached goes to `report`.
    pub fn new(inner: Store, partners: Arc<Partners>, report: Report) -> Federated {
        Federated { deadline: Instant::now() + partners.deadline, inner, partners, report, cache: Mutex::default() }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The time partners may still take, less the margin for the way back.
    fn budget(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now()).saturating_sub(MARGIN)
    }

    fn partner_of(&self, id: &NodeId) -> Option<&Arc<PartnerClient>> {
        self.partners.get(id.organisation())
    }

    /// A partner that failed earlier in this request, with why.
    fn failed(&self, organisation: &str) -> Option<Failure> {
        self.cache().failed.get(organisation).cloned()
    }

    fn fail(&self, organisation: &str, failure: &Failure, ids: &[NodeId], report: &Report) {
        report.note(organisation, failure.reason, ids, &failure.message);
        self.cache().failed.entry(organisation.to_owned()).or_insert_with(|| failure.clone());
    }

    /// Notes that a partner's nodes could not be had, and does not ask for them again.
    fn give_up_nodes(&self, organisation: &str, failure: &Failure, ids: Vec<NodeId>, report: &Report) {
        self.fail(organisation, failure, &ids, report);
        let mut cache = self.cache();
        for id in ids {
            cache.nodes.insert(id, None);
        }
    }

    /// Nodes by id: this instance's from its store, partners' from them.
    async fn nodes_noting(&self, ids: &[NodeId], report: &Report) -> Result<Vec<Node>> {
        let (foreign, local): (Vec<NodeId>, Vec<NodeId>) =
            ids.iter().cloned().partition(|id| self.partner_of(id).is_some());
        let mut found = if local.is_empty() { Vec::new() } else { self.inner.nodes(&local).await? };
        if found.len() < local.len() {
            self.note_strangers(&local, &found, report).await?;
        }
        found.extend(self.partner_nodes(&foreign, report).await);
        Ok(found)
    }

    /// Notes ids that are neither here nor a partner's: their owner is not a partner.
    async fn note_strangers(&self, asked: &[NodeId], found: &[Node], report: &Report) -> Result<()> {
        let found: HashSet<&NodeId> = found.iter().map(|n| &n.id).collect();
        let missing: Vec<&NodeId> = asked.iter().filter(|id| !found.contains(id)).collect();
        let mut owners: Vec<NodeId> =
            missing.iter().filter_map(|id| NodeId::organisation_node(id.organisation()).ok()).collect();
        owners.sort();
        owners.dedup();
        let here: HashSet<NodeId> = self.inner.nodes(&owners).await?.into_iter().map(|n| n.id).collect();
        for id in missing {
            let owner = NodeId::organisation_node(id.organisation()).ok();
            if owner.is_some_and(|o| !here.contains(&o)) {
                let message = "its owner is not a partner of this instance";
                report.note(id.organisation(), UnreachableReason::NotAPartner, [id], message);
            }
        }
        Ok(())
    }

    /// Partners' nodes, each partner asked once for what the request does not hold yet.
    async fn partner_nodes(&self, ids: &[NodeId], report: &Report) -> Vec<Node> {
        let mut wanted: HashMap<String, Vec<NodeId>> = HashMap::new();
        {
            let cache = self.cache();
            for id in ids {
                if !cache.nodes.contains_key(id) {
                    wanted.entry(id.organisation().to_owned()).or_default().push(id.clone());
                }
            }
        }
        let mut calls = Vec::new();
        for (organisation, mut ids) in wanted {
            ids.sort();
            ids.dedup();
            let Some(client) = self.partners.get(&organisation).cloned() else { continue };
            if let Some(failure) = self.failed(&organisation) {
                self.give_up_nodes(&organisation, &failure, ids, report);
                continue;
            }
            calls.push(async move {
                let mut got = Vec::new();
                for chunk in ids.chunks(MAX_IDS_PER_REQUEST) {
                    match client.nodes(chunk, self.budget()).await {
                        Ok(nodes) => got.extend(nodes),
                        Err(failure) => return (client, ids, Err(failure)),
                    }
                }
                (client, ids, Ok(got))
            });
        }
        for (client, asked, outcome) in join_all(calls).await {
            let organisation = &client.organisation;
            match outcome {
                Ok(nodes) => {
                    let mut cache = self.cache();
                    for node in nodes {
                        cache.nodes.insert(node.id.clone(), Some(node));
                    }
                    let unshared: Vec<NodeId> =
                        asked.iter().filter(|id| !cache.nodes.contains_key(*id)).cloned().collect();
                    for id in &unshared {
                        cache.nodes.insert(id.clone(), None);
                    }
                    drop(cache);
                    let message = "it did not return these nodes: it has none such, or does not share them";
                    if !unshared.is_empty() {
                        report.note(organisation, UnreachableReason::NotShared, &unshared, message);
                    }
                }
                Err(failure) => self.give_up_nodes(organisation, &failure, asked, report),
            }
        }
        let cache = self.cache();
        ids.iter().filter_map(|id| cache.nodes.get(id).cloned().flatten()).collect()
    }

    /// The relationships partners hold that way on these ids. Each partner is asked about its own
    /// ids and this instance's (to which its relationships may point), never another partner's.
    async fn partner_edges(&self, ids: &[NodeId], step: Direction, plan: &Plan, report: &Report) -> Vec<Edge> {
        let mut calls = Vec::new();
        for client in self.partners.all() {
            let organisation = &client.organisation;
            let mut need: Vec<NodeId> = {
                let cache = self.cache();
                ids.iter()
                    .filter(|id| {
                        let ours_or_its = self.partner_of(id).is_none_or(|p| &p.organisation == organisation);
                        ours_or_its && !cache.walked.contains_key(&(organisation.clone(), (*id).clone(), step))
                    })
                    .cloned()
                    .collect()
            };
            need.sort();
            need.dedup();
            if need.is_empty() {
                continue;
            }
            if let Some(failure) = self.failed(organisation) {
                report.note(organisation, failure.reason, &need, &failure.message);
                continue;
            }
            calls.push(self.walk_partner(client.clone(), need, plan.clone()));
        }
        for (client, need, outcome) in join_all(calls).await {
            if let Err(failure) = outcome {
                self.fail(&client.organisation, &failure, &need, report);
            }
        }
        let cache = self.cache();
        let mut edges = Vec::new();
        for client in self.partners.all() {
            for id in ids {
                if let Some(list) = cache.walked.get(&(client.organisation.clone(), id.clone(), step)) {
                    edges.extend(list.iter().cloned());
                }
            }
        }
        edges
    }

    /// Asks one partner to walk from `need`, and keeps what it answers.
    async fn walk_partner(
        &self,
        client: Arc<PartnerClient>,
        need: Vec<NodeId>,
        plan: Plan,
    ) -> (Arc<PartnerClient>, Vec<NodeId>, std::result::Result<(), Failure>) {
        for chunk in need.chunks(MAX_IDS_PER_REQUEST) {
            let request = WalkRequest {
                ids: chunk.to_vec(),
                direction: plan.direction,
                via: plan.via.clone(),
                as_of: plan.as_of,
                depth: plan.levels,
                max_nodes: plan.max_nodes,
            };
            let answer = match client.walk(&request, self.budget()).await {
                Ok(answer) => answer,
                Err(failure) => return (client, need, Err(failure)),
            };
            let organisation = client.organisation.clone();
            let mut cache = self.cache();
            for node in answer.nodes {
                cache.nodes.insert(node.id.clone(), Some(node));
            }
            for id in &answer.expanded {
                for &step in plan.direction.steps() {
                    let touching = |e: &&Edge| traverse::near_end(e, step) == id;
                    let list: Vec<Edge> = answer.edges.iter().filter(touching).cloned().collect();
                    cache.walked.insert((organisation.clone(), id.clone(), step), list);
                }
            }
            // An id the partner did not expand (a cap stopped it) holds nothing we could learn here.
            for id in chunk.iter().filter(|id| !answer.expanded.contains(id)) {
                for &step in plan.direction.steps() {
                    cache.walked.entry((organisation.clone(), id.clone(), step)).or_default();
                }
            }
        }
        (client, need, Ok(()))
    }

    /// Relationships of these ids that way: this instance's and partners'.
    async fn all_edges(&self, ids: &[NodeId], step: Direction, plan: &Plan, report: &Report) -> Result<Vec<Edge>> {
        // Relationships this instance holds towards partners' ids are found by those ids too.
        let mut edges = self.inner.edges(ids, step).await?;
        edges.extend(self.partner_edges(ids, step, plan, report).await);
        Ok(dedup(edges))
    }

    /// Keeps the relationships whose two ends the audience may see, wherever the ends live.
    async fn seen_by(&self, edges: Vec<Edge>, audience: &Audience, report: &Report) -> Result<Vec<Edge>> {
        let mut ends: Vec<NodeId> = edges.iter().flat_map(|e| [e.from.clone(), e.to.clone()]).collect();
        ends.sort();
        ends.dedup();
        let seen: HashSet<NodeId> = self
            .nodes_noting(&ends, report)
            .await?
            .into_iter()
            .filter(|n| audience.sees_node(n))
            .map(|n| n.id)
            .collect();
        Ok(edges.into_iter().filter(|e| seen.contains(&e.from) && seen.contains(&e.to)).collect())
    }
}

fn key(edge: &Edge) -> (NodeId, RelationshipKind, NodeId) {
    (edge.from.clone(), edge.kind, edge.to.clone())
}

fn dedup(edges: Vec<Edge>) -> Vec<Edge> {
    let mut seen = HashSet::new();
    edges.into_iter().filter(|e| seen.insert(key(e))).collect()
}

/// The traversal's lookups for one trace or path search, with the plan partners walk by.
struct Walker<'a> {
    fed: &'a Federated,
    plan: Plan,
    report: Report,
}

#[async_trait]
impl Neighbours for Walker<'_> {
    async fn nodes(&mut self, ids: &[NodeId]) -> Result<Vec<Node>> {
        self.fed.nodes_noting(ids, &self.report).await
    }

    async fn edges(&mut self, ids: &[NodeId], direction: Direction) -> Result<Vec<Edge>> {
        // A walk one way asks partners to walk on the way of this lookup: a path search looks
        // out from its start and back from its target.
        if self.plan.direction != TraceDirection::Both {
            self.plan.direction = TraceDirection::along(direction);
        }
        self.fed.all_edges(ids, direction, &self.plan, &self.report).await
    }

    fn reach(&mut self, levels: u32) {
        self.plan.levels = levels.max(1);
    }
}

impl Federated {
    /// What one walk could not reach: said in its truncation, kept in the request's report, and
    /// returned.
    fn unreachable(&self, walked: &Report, truncated: &mut Vec<String>) -> Vec<super::Unreachable> {
        let unreachable = walked.entries();
        truncated.extend(unreachable.iter().map(super::Unreachable::as_truncation));
        self.report.absorb(walked);
        unreachable
    }

    fn walker(
        &self,
        direction: TraceDirection,
        via: &[RelationshipKind],
        as_of: Option<chrono::NaiveDate>,
        max_nodes: usize,
    ) -> Walker<'_> {
        let plan = Plan { direction, via: via.to_vec(), as_of, levels: 1, max_nodes };
        Walker { fed: self, plan, report: Report::default() }
    }
}

#[async_trait]
impl GraphStore for Federated {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }

    fn confirms_callers(&self) -> bool {
        self.inner.confirms_callers()
    }

    async fn ping(&self) -> Result<()> {
        self.inner.ping().await
    }

    async fn nodes(&self, ids: &[NodeId]) -> Result<Vec<Node>> {
        self.nodes_noting(ids, &self.report).await
    }

    async fn list(&self, query: &ListQuery) -> Result<Vec<Node>> {
        self.inner.list(query).await
    }

    async fn count(&self, kind: NodeKind, filter: &NodeFilter) -> Result<u64> {
        self.inner.count(kind, filter).await
    }

    async fn edges(&self, ids: &[NodeId], direction: Direction) -> Result<Vec<Edge>> {
        let plan = Plan::one_step(direction, traverse::MAX_TRACE_NODES);
        self.all_edges(ids, direction, &plan, &self.report).await
    }

    async fn visible_edges(&self, ids: &[NodeId], direction: Direction, audience: &Audience) -> Result<Vec<Edge>> {
        let mut edges = self.inner.visible_edges(ids, direction, audience).await?;
        let held: HashSet<_> = edges.iter().map(key).collect();
        let plan = Plan::one_step(direction, traverse::MAX_TRACE_NODES);
        let mut across = self.inner.foreign_edges(ids, direction).await?;
        across.extend(self.partner_edges(ids, direction, &plan, &self.report).await);
        let across: Vec<Edge> = dedup(across).into_iter().filter(|e| !held.contains(&key(e))).collect();
        if !across.is_empty() {
            edges.extend(self.seen_by(across, audience, &self.report).await?);
        }
        Ok(edges)
    }

    async fn foreign_edges(&self, ids: &[NodeId], direction: Direction) -> Result<Vec<Edge>> {
        self.inner.foreign_edges(ids, direction).await
    }

    async fn apply_as(&self, changes: Vec<Change>, actor: Option<&Actor>) -> Result<Vec<Applied>, Failed> {
        self.inner.apply_as(changes, actor).await
    }

    async fn save_token(&self, token: &ApiToken) -> Result<()> {
        self.inner.save_token(token).await
    }

    async fn revoke_token(&self, id: &str) -> Result<bool> {
        self.inner.revoke_token(id).await
    }

    async fn tokens(&self) -> Result<Vec<ApiToken>> {
        self.inner.tokens().await
    }

    async fn token_by_hash(&self, hash: &str) -> Result<Option<ApiToken>> {
        self.inner.token_by_hash(hash).await
    }

    async fn token_by_hash_at_once(&self, hash: &str) -> Option<Result<Option<ApiToken>>> {
        self.inner.token_by_hash_at_once(hash).await
    }

    async fn audit_log(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>> {
        self.inner.audit_log(query).await
    }

    async fn audit_organisations(&self) -> Result<Vec<String>> {
        self.inner.audit_organisations().await
    }

    async fn restore_access(&self, tokens: &[ApiToken], entries: &[AuditEntry]) -> Result<()> {
        self.inner.restore_access(tokens, entries).await
    }

    async fn audit_count(&self, organisation: &str) -> Result<u64> {
        self.inner.audit_count(organisation).await
    }

    async fn is_empty(&self) -> Result<bool> {
        self.inner.is_empty().await
    }

    async fn dump(&self) -> Result<(Vec<Node>, Vec<Edge>)> {
        self.inner.dump().await
    }

    async fn trace(&self, request: &TraceRequest) -> Result<Trace> {
        let mut walker = self.walker(request.direction, &request.via, request.as_of, request.max_nodes);
        let mut trace = traverse::trace(&mut walker, request).await?;
        trace.unreachable = self.unreachable(&walker.report, &mut trace.truncated);
        Ok(trace)
    }

    async fn paths(&self, request: &PathRequest) -> Result<Paths> {
        let mut walker = self.walker(request.direction, &request.via, None, traverse::MAX_TRACE_NODES);
        let mut paths = traverse::paths(&mut walker, request).await?;
        self.unreachable(&walker.report, &mut paths.truncated);
        Ok(paths)
    }

    async fn search(&self, request: &SearchRequest) -> Result<Vec<SearchHit>> {
        self.inner.search(request).await
    }

    async fn influences_across(&self, from: Option<&str>, to: Option<&str>, limit: usize) -> Result<Vec<Edge>> {
        self.inner.influences_across(from, to, limit).await
    }

    async fn embedding_pairs(&self, organisation: Option<&str>) -> Result<Vec<(Node, Node)>> {
        self.inner.embedding_pairs(organisation).await
    }
}
