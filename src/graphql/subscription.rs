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

use crate::domain::{Applied, Edge, Node, NodeId, NodeKind, now};

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
}

impl GraphEvent {
    /// The events a committed change set makes, in order. A deleted node's
    /// relationships are reported deleted before the node.
    pub fn from_applied(applied: &[Applied]) -> Vec<GraphEvent> {
        let at = now();
        let node = |kind, node: &Node| GraphEvent { kind, node: Some(Arc::new(node.clone())), edge: None, at };
        let edge = |kind, edge: &Edge| GraphEvent { kind, node: None, edge: Some(edge.clone()), at };
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
    pub fn publish(&self, applied: &[Applied]) {
        {
            let mut deleted = self.deleted.lock().expect("the deletions lock");
            for change in applied {
                if let Applied::Deleted { node, .. } = change {
                    deleted.put(node.id.clone(), Arc::new(node.clone()));
                }
            }
        }
        for event in GraphEvent::from_applied(applied) {
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
    async fn graph_changed(
        &self,
        ctx: &Context<'_>,
        kinds: Option<Vec<NodeKind>>,
        organisation: Option<String>,
    ) -> impl Stream<Item = GraphEvent> + use<> {
        let kinds = kinds.unwrap_or_default();
        let receiver = ctx.data_unchecked::<ChangeFeed>().subscribe();
        BroadcastStream::new(receiver).filter_map(move |event| {
            let wanted = event.ok().filter(|e| e.matches(&kinds, organisation.as_deref()));
            async move { wanted }
        })
    }
}
