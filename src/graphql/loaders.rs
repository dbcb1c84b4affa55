//! Request-scoped DataLoaders: relationship fields ask for nodes and edges one
//! at a time, and the loaders turn each round of asks into one store call.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Wake, Waker};

use async_graphql::dataloader::{DataLoader, Loader};
use futures::future::BoxFuture;
use tokio::sync::Notify;

use crate::domain::{Edge, Node, NodeId};
use crate::store::{Direction, Store};

use super::error::to_gql;

pub struct NodeLoader(pub Store);

impl Loader<NodeId> for NodeLoader {
    type Value = Arc<Node>;
    type Error = Arc<async_graphql::Error>;

    async fn load(&self, ids: &[NodeId]) -> Result<HashMap<NodeId, Arc<Node>>, Self::Error> {
        let nodes = self.0.nodes(ids).await.map_err(|e| Arc::new(to_gql(e)))?;
        Ok(nodes.into_iter().map(|n| (n.id.clone(), Arc::new(n))).collect())
    }
}

/// A node's relationships one way, with the nodes at their far ends that the store read in the
/// same statement (all, some or none of them: the others are loaded as usual).
#[derive(Default)]
pub struct Linked {
    pub edges: Vec<Edge>,
    pub ends: HashMap<NodeId, Arc<Node>>,
}

impl std::ops::Deref for Linked {
    type Target = Vec<Edge>;

    fn deref(&self) -> &Vec<Edge> {
        &self.edges
    }
}

/// Keys: a node and a direction; values: all its relationships that way.
pub struct EdgeLoader(pub Store, pub Direction);

impl Loader<NodeId> for EdgeLoader {
    type Value = Arc<Linked>;
    type Error = Arc<async_graphql::Error>;

    async fn load(&self, ids: &[NodeId]) -> Result<HashMap<NodeId, Arc<Linked>>, Self::Error> {
        let (edges, ends) = self.0.edges_and_ends(ids, self.1).await.map_err(|e| Arc::new(to_gql(e)))?;
        let ends: HashMap<NodeId, Arc<Node>> = ends.into_iter().map(|n| (n.id.clone(), Arc::new(n))).collect();
        let mut by_node: HashMap<NodeId, Linked> = ids.iter().map(|id| (id.clone(), Linked::default())).collect();
        for edge in edges {
            let (near, far) = match self.1 {
                Direction::Out => (&edge.from, &edge.to),
                Direction::In => (&edge.to, &edge.from),
            };
            if let Some(linked) = by_node.get_mut(near) {
                if let Some(node) = ends.get(far) {
                    linked.ends.insert(far.clone(), node.clone());
                }
                linked.edges.push(edge);
            }
        }
        Ok(by_node.into_iter().map(|(k, v)| (k, Arc::new(v))).collect())
    }
}

/// How long a loader waits for more keys before it asks the store: not at all,
/// since a request's loaders run only once the request's current poll is over
/// (see `Batching`), when every field has asked for its keys.
/// async-graphql is built without its `tokio-timer` feature on purpose: its
/// async-io timer is ready at once for a wait of zero, where a tokio sleep
/// ends only on the timer's next millisecond tick (see BENCHMARKS.md).
const LOADER_DELAY: std::time::Duration = std::time::Duration::ZERO;

/// Holds a request's loads until the request has asked for every key it can.
///
/// A loader spawns its load as a task when the first key of a round arrives. On
/// tokio's multi-threaded runtime another worker may run that task at once,
/// while the request is still being polled and the other fields of the same
/// selection set have not asked for their keys yet; or while the load before
/// is still handing out its values, so that the fields waiting for them wake
/// one poll apart. Either way a round is split into several store calls (Q2's
/// fifty `producedBy` fields made about twenty). Run through `Batching::run`, a
/// request marks each of its polls and each wake-up, and a loader's task starts
/// only once the loads that were running when it was spawned are over and the
/// request is neither being polled nor about to be.
#[derive(Clone, Default)]
pub struct Batching(Arc<Polls>);

#[derive(Default)]
struct Polls {
    /// Whether the request is being polled.
    polling: AtomicBool,
    /// Whether the request was woken since its last poll began.
    woken: AtomicBool,
    /// Whether the request is over (answered or dropped): loads wait no more.
    over: AtomicBool,
    /// How many loads have started, and how many of them are over.
    started: AtomicUsize,
    finished: AtomicUsize,
    /// Told when a poll, a load or the request ends.
    settled: Notify,
    /// The waker of the task that runs the request.
    waker: Mutex<Option<Waker>>,
}

impl Polls {
    /// Whether a load spawned when `started` loads had started may begin.
    fn ready_for_load(&self, started: usize) -> bool {
        self.over.load(Ordering::SeqCst)
            || (self.finished.load(Ordering::SeqCst) >= started
                && !self.polling.load(Ordering::SeqCst)
                && !self.woken.load(Ordering::SeqCst))
    }
}

impl Wake for Polls {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::SeqCst);
        if let Some(waker) = self.waker.lock().unwrap_or_else(PoisonError::into_inner).as_ref() {
            waker.wake_by_ref();
        }
    }
}

/// What ended; noted on drop, so that a poll that panics or a dropped request or
/// load still lets the waiting loads go.
enum End {
    Poll,
    Load,
    Request,
}

struct Settle<'a>(&'a Polls, End);

impl Drop for Settle<'_> {
    fn drop(&mut self) {
        let Settle(polls, end) = self;
        match end {
            End::Poll => polls.polling.store(false, Ordering::SeqCst),
            End::Load => {
                polls.finished.fetch_add(1, Ordering::SeqCst);
            }
            End::Request => polls.over.store(true, Ordering::SeqCst),
        }
        polls.settled.notify_waiters();
    }
}

impl Batching {
    /// Runs a request's future, marking each of its polls and wake-ups.
    pub async fn run<F: Future>(&self, future: F) -> F::Output {
        let polls = &self.0;
        let _over = Settle(polls, End::Request);
        let waker = Waker::from(Arc::clone(polls));
        let mut future = std::pin::pin!(future);
        std::future::poll_fn(|cx| {
            {
                let mut task = polls.waker.lock().unwrap_or_else(PoisonError::into_inner);
                if !task.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    *task = Some(cx.waker().clone());
                }
            }
            polls.polling.store(true, Ordering::SeqCst);
            polls.woken.store(false, Ordering::SeqCst);
            let _end = Settle(polls, End::Poll);
            future.as_mut().poll(&mut Context::from_waker(&waker))
        })
        .await
    }

    /// Waits until a load spawned when `started` loads had started may begin.
    async fn settled(&self, started: usize) {
        loop {
            let settled = self.0.settled.notified();
            let mut settled = std::pin::pin!(settled);
            // Registered before the check, so an end in between still wakes us.
            settled.as_mut().enable();
            if self.0.ready_for_load(started) {
                return;
            }
            settled.await;
        }
    }

    /// Spawns a loader's task, to start once the request has asked for every key it can.
    fn spawner(&self) -> impl Fn(BoxFuture<'static, ()>) + Send + Sync + 'static {
        let batching = self.clone();
        move |load| {
            let batching = batching.clone();
            let started = batching.0.started.load(Ordering::SeqCst);
            tokio::spawn(async move {
                batching.settled(started).await;
                batching.0.started.fetch_add(1, Ordering::SeqCst);
                let _end = Settle(&batching.0, End::Load);
                load.await;
            });
        }
    }
}

/// The loaders of one request.
pub struct Loaders {
    pub nodes: DataLoader<NodeLoader>,
    pub outgoing: DataLoader<EdgeLoader>,
    pub incoming: DataLoader<EdgeLoader>,
}

impl Loaders {
    /// The loaders of a request run through `batching` (see `Batching`); a request that is
    /// not run through it batches only what its fields ask for before a worker runs the load.
    pub fn new(store: &Store, batching: &Batching) -> Loaders {
        Loaders {
            nodes: DataLoader::new(NodeLoader(store.clone()), batching.spawner()).delay(LOADER_DELAY),
            outgoing: DataLoader::new(EdgeLoader(store.clone(), Direction::Out), batching.spawner())
                .delay(LOADER_DELAY),
            incoming: DataLoader::new(EdgeLoader(store.clone(), Direction::In), batching.spawner()).delay(LOADER_DELAY),
        }
    }

    pub fn edges(&self, direction: Direction) -> &DataLoader<EdgeLoader> {
        match direction {
            Direction::Out => &self.outgoing,
            Direction::In => &self.incoming,
        }
    }
}
