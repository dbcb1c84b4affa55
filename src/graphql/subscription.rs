//! `graphChanged`: node and relationship events, published after a change set
//! commits. One broadcast channel per server; a subscriber that falls too far
//! behind skips what it missed rather than slowing the writers.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use async_graphql::{Context, Enum, Object, Subscription};
use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt};
use lru::LruCache;
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;

use std::collections::HashMap;

use crate::domain::{Applied, Audience, Caller, Edge, Node, NodeId, NodeKind, now};
use crate::store::Store;

use super::links::Relationship;
use super::nodes::{NodeInterface, wrap};

/// How many events a slow subscriber may fall behind before it skips some.
const BACKLOG: usize = 1024;

#[derive(Enum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum GraphEventType {
    NodeCreated,
    NodeUpdated,
    NodeDeleted,
    RelationshipCreated,
    RelationshipDeleted,
}

/// One change to the graph.
#[derive(Clone, Debug)]
pub struct GraphEvent {
    pub kind: GraphEventType,
    pub node: Option<Arc<Node>>,
    pub edge: Option<Edge>,
    pub at: DateTime<Utc>,
    /// For relationship events, the two ends as they were when the event was made (an end
    /// missing here was not found), so each subscriber can be shown only what it may see.
    pub ends: Vec<Arc<Node>>,
}

impl GraphEvent {
    /// The events a committed change set makes, in order. A deleted node's
    /// relationships are reported deleted before the node.
    pub fn from_applied(applied: &[Applied]) -> Vec<GraphEvent> {
        let at = now();
        let node = |kind, node: &Node| GraphEvent {
            kind,
            node: Some(Arc::new(node.clone())),
            edge: None,
            at,
            ends: Vec::new(),
        };
        let edge = |kind, edge: &Edge| GraphEvent { kind, node: None, edge: Some(edge.clone()), at, ends: Vec::new() };
        let mut events = Vec::new();
        for change in applied {
            match change {
                Applied::Created(n) => events.push(node(GraphEventType::NodeCreated, n)),
                Applied::Updated { after, .. } => events.push(node(GraphEventType::NodeUpdated, after)),
                Applied::Deleted { node: n, edges } => {
                    events.extend(edges.iter().map(|e| edge(GraphEventType::RelationshipDeleted, e)));
                    events.push(node(GraphEventType::NodeDeleted, n));
                }
                Applied::Linked(e) => events.push(edge(GraphEventType::RelationshipCreated, e)),
                Applied::Unlinked(e) => events.push(edge(GraphEventType::RelationshipDeleted, e)),
            }
        }
        events
    }

    /// Whether an audience may see the event: its node, or both ends of its relationship.
    fn visible_to(&self, audience: &Audience) -> bool {
        match (&self.node, &self.edge) {
            (Some(node), _) => audience.sees_node(node),
            (None, Some(edge)) => {
                [&edge.from, &edge.to].iter().all(|id| self.ends.iter().any(|n| &n.id == *id && audience.sees_node(n)))
            }
            (None, None) => false,
        }
    }

    /// Whether the event concerns a node of one of `kinds` or owned by `organisation`.
    fn matches(&self, kinds: &[NodeKind], organisation: Option<&str>) -> bool {
        let ends: Vec<(NodeKind, &str)> = match (&self.node, &self.edge) {
            (Some(n), _) => vec![(n.kind(), n.organisation())],
            (None, Some(e)) => {
                vec![(e.from.kind(), e.from.organisation()), (e.to.kind(), e.to.organisation())]
            }
            (None, None) => Vec::new(),
        };
        let kind_ok = kinds.is_empty() || ends.iter().any(|(k, _)| kinds.contains(k));
        let org_ok = organisation.is_none_or(|o| ends.iter().any(|(_, owner)| *owner == o));
        kind_ok && org_ok
    }
}

#[Object]
impl GraphEvent {
    #[graphql(name = "type")]
    async fn event_type(&self) -> GraphEventType {
        self.kind
    }

    /// The node, for node events: as it is now, or as it was when deleted.
    async fn node(&self) -> Option<NodeInterface> {
        self.node.clone().map(wrap)
    }

    /// The relationship, for relationship events, with both ends and its properties.
    async fn relationship(&self) -> Option<Relationship> {
        self.edge.clone().map(Relationship)
    }

    async fn at(&self) -> DateTime<Utc> {
        self.at
    }
}

/// How many deleted nodes are remembered, so that the relationships reported deleted with them
/// still resolve both ends.
const REMEMBERED_DELETIONS: usize = 1024;

/// Where committed changes are announced.
#[derive(Clone)]
pub struct ChangeFeed {
    sender: broadcast::Sender<GraphEvent>,
    deleted: Arc<Mutex<LruCache<NodeId, Arc<Node>>>>,
}

impl Default for ChangeFeed {
    fn default() -> Self {
        let size = NonZeroUsize::new(REMEMBERED_DELETIONS).expect("a positive size");
        ChangeFeed { sender: broadcast::channel(BACKLOG).0, deleted: Arc::new(Mutex::new(LruCache::new(size))) }
    }
}

impl ChangeFeed {
    /// Announces a committed change set. `everything` (the unfiltered store) gives the ends of
    /// changed relationships, so that each subscriber sees a relationship only when it may see
    /// both ends; a node deleted in the change set is its own record.
    pub async fn publish(&self, applied: &[Applied], everything: &Store) {
        let mut events = GraphEvent::from_applied(applied);
        let mut known: HashMap<NodeId, Arc<Node>> = HashMap::new();
        for change in applied {
            if let Applied::Deleted { node, .. } = change {
                let node = Arc::new(node.clone());
                self.deleted.lock().expect("the deletions lock").put(node.id.clone(), node.clone());
                known.insert(node.id.clone(), node);
            }
        }
        // Nobody to tell: the ends are not read (a read of the store after every change set).
        if self.sender.receiver_count() == 0 {
            return;
        }
        let mut wanted: Vec<NodeId> = events
            .iter()
            .filter_map(|e| e.edge.as_ref())
            .flat_map(|e| [e.from.clone(), e.to.clone()])
            .filter(|id| !known.contains_key(id))
            .collect();
        wanted.sort();
        wanted.dedup();
        if !wanted.is_empty() {
            match everything.nodes(&wanted).await {
                Ok(nodes) => known.extend(nodes.into_iter().map(|n| (n.id.clone(), Arc::new(n)))),
                // Without the ends, relationship events reach nobody rather than the wrong people.
                Err(e) => tracing::warn!(error = %e, "the ends of changed relationships could not be read"),
            }
        }
        for event in &mut events {
            if let Some(edge) = &event.edge {
                event.ends = [&edge.from, &edge.to].iter().filter_map(|id| known.get(*id).cloned()).collect();
            }
        }
        for event in events {
            // No subscriber is not an error.
            let _ = self.sender.send(event);
        }
    }

    /// How many subscriptions are open.
    pub fn subscribers(&self) -> usize {
        self.sender.receiver_count()
    }

    /// A node deleted a moment ago, as it was.
    pub fn recently_deleted(&self, id: &NodeId) -> Option<Arc<Node>> {
        self.deleted.lock().expect("the deletions lock").get(id).cloned()
    }

    fn subscribe(&self) -> broadcast::Receiver<GraphEvent> {
        self.sender.subscribe()
    }
}

#[derive(Default)]
pub struct SubscriptionRoot;

#[Subscription]
impl SubscriptionRoot {
    /// Node and relationship events as they are committed, optionally only those touching nodes of
    /// some kinds or owned by one organisation (a relationship matches when either end does).
    /// Only events about nodes the caller may see arrive; a relationship's, when it may see both ends.
    async fn graph_changed(
        &self,
        ctx: &Context<'_>,
        kinds: Option<Vec<NodeKind>>,
        organisation: Option<String>,
    ) -> impl Stream<Item = GraphEvent> + use<> {
        let kinds = kinds.unwrap_or_default();
        let audience = ctx.data_unchecked::<Caller>().audience();
        let receiver = ctx.data_unchecked::<ChangeFeed>().subscribe();
        BroadcastStream::new(receiver).filter_map(move |event| {
            let wanted = event.ok().filter(|e| e.visible_to(&audience) && e.matches(&kinds, organisation.as_deref()));
            async move { wanted }
        })
    }
}
