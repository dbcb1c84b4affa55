//! Request-scoped DataLoaders: relationship fields ask for nodes and edges one
//! at a time, and the loaders turn each round of asks into one store call.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Wake, Waker};

use async_graphql::dataloader::{DataLoader, Loader};
use futures::StreamExt as _;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;

use crate::domain::{Edge, Node, NodeId};
use crate::store::traverse::{far_end, near_end};
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
        Ok(linked(ids, self.1, edges, ends))
    }
}

/// The relationships of each of `ids` that way, with the far ends read with them.
fn linked(ids: &[NodeId], direction: Direction, edges: Vec<Edge>, ends: Vec<Node>) -> HashMap<NodeId, Arc<Linked>> {
    let ends: HashMap<NodeId, Arc<Node>> = ends.into_iter().map(|n| (n.id.clone(), Arc::new(n))).collect();
    let mut by_node: HashMap<NodeId, Linked> = ids.iter().map(|id| (id.clone(), Linked::default())).collect();
    for edge in edges {
        let (near, far) = (near_end(&edge, direction), far_end(&edge, direction));
        if let Some(linked) = by_node.get_mut(near) {
            if let Some(node) = ends.get(far) {
                linked.ends.insert(far.clone(), node.clone());
            }
            linked.edges.push(edge);
        }
    }
    by_node.into_iter().map(|(k, v)| (k, Arc::new(v))).collect()
}

/// How long a loader waits for more keys before it asks the store: not at all,
/// since a request's loaders run only once the request's current poll is over
/// (see `Batching`), when every field has asked for its keys.
/// async-graphql is built without its `tokio-timer` feature on purpose: its
/// async-io timer is ready at once for a wait of zero, where a tokio sleep
/// ends only on the timer's next millisecond tick (see benches/HISTORY.md).
const LOADER_DELAY: std::time::Duration = std::time::Duration::ZERO;

/// How many times one poll of a request's task may go round between the request and its loads
/// before it yields to the scheduler; a request has a handful of rounds.
const TURNS_A_POLL: usize = 32;

/// How many polls in a row a request may wake itself during before the loads it asked for are
/// started anyway. A list's items are resolved in a `FuturesUnordered`, which stops after two of
/// them woke themselves (as each object's own set of fields does once, when all its fields have
/// been polled), so a list of `n` objects asks for all its keys in about `n / 2` polls; a request
/// that kept waking itself for ever would still get its loads.
const YIELDS_A_ROUND: usize = 4_096;

/// Runs a request's loads inside the request's own task, each round once the request has asked
/// for every key it can.
///
/// A loader hands over its load when the first key of a round arrives. Spawned as a task of its
/// own on tokio's multi-threaded runtime, another worker may run it at once, while the request is
/// still being polled and the other fields of the same selection set have not asked for their
/// keys yet; or while the load before is still handing out its values, so that the fields waiting
/// for them ask one poll apart. Either way a round is split into several store calls (Q2's fifty
/// `producedBy` fields made about twenty). Run through `Batching::run`, a request keeps its loads
/// to itself: they are started only when a poll of the request is over without the request
/// having woken itself (a list of objects stops after two of them did, [`YIELDS_A_ROUND`]), and
/// polled by the same task, and when a load hands out values the request is polled again before
/// any new load starts. So every field of a round has asked for its key, and no load costs a
/// task or a trip through the scheduler. Outside `run` (a subscription's events), loads are
/// spawned as usual.
#[derive(Clone, Default)]
pub struct Batching(Arc<Polls>);

#[derive(Default)]
struct Polls {
    /// Whether `run` is driving the request, so that loads are kept for it rather than spawned.
    running: AtomicBool,
    /// Whether `run` is polling the request or its loads: a wake-up then needs no new poll.
    inside: AtomicBool,
    /// Whether the request was woken since its last poll began.
    woken: AtomicBool,
    /// Loads handed over during the request's poll, not started yet.
    queued: Mutex<Vec<BoxFuture<'static, ()>>>,
    /// The waker of the task that runs the request.
    waker: Mutex<Option<Waker>>,
}

impl Wake for Polls {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::SeqCst);
        self.wake_task();
    }
}

impl Polls {
    /// Wakes the task that runs the request, unless `run` is polling it already and will look
    /// at `woken` and `queued` before it lets go.
    fn wake_task(&self) {
        if self.inside.load(Ordering::SeqCst) {
            return;
        }
        if let Some(waker) = self.waker.lock().unwrap_or_else(PoisonError::into_inner).as_ref() {
            waker.wake_by_ref();
        }
    }

    fn has_queued(&self) -> bool {
        !self.queued.lock().unwrap_or_else(PoisonError::into_inner).is_empty()
    }
}

/// Marks the end of `run`, even when its future is dropped, so that later loads are spawned.
struct Running<'a>(&'a Polls);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.running.store(false, Ordering::SeqCst);
        self.0.inside.store(false, Ordering::SeqCst);
        self.0.queued.lock().unwrap_or_else(PoisonError::into_inner).clear();
    }
}

impl Batching {
    /// Runs a request's future together with the loads it asks for (see `Batching`).
    pub async fn run<F: Future>(&self, future: F) -> F::Output {
        let polls = &self.0;
        polls.running.store(true, Ordering::SeqCst);
        let _running = Running(polls);
        polls.woken.store(true, Ordering::SeqCst);
        let request_waker = Waker::from(Arc::clone(polls));
        let mut future = std::pin::pin!(future);
        let mut loads = FuturesUnordered::new();
        // How many polls in a row the request woke itself during, without a load started.
        let mut yields = 0;
        std::future::poll_fn(|cx| {
            {
                let mut task = polls.waker.lock().unwrap_or_else(PoisonError::into_inner);
                if !task.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    *task = Some(cx.waker().clone());
                }
            }
            for _ in 0..TURNS_A_POLL {
                polls.inside.store(true, Ordering::SeqCst);
                // The request first: a load's values reach every field that waits for them, and
                // those fields ask for the next round's keys, before any load of that round starts.
                if polls.woken.swap(false, Ordering::SeqCst) {
                    if let Poll::Ready(output) = future.as_mut().poll(&mut Context::from_waker(&request_waker)) {
                        return Poll::Ready(output);
                    }
                    // Woken while it was polled: the request stopped to let others run, not
                    // because all its fields wait. Poll it again before starting the round.
                    if polls.woken.load(Ordering::SeqCst) && yields < YIELDS_A_ROUND {
                        yields += 1;
                        continue;
                    }
                }
                yields = 0;
                loads.extend(polls.queued.lock().unwrap_or_else(PoisonError::into_inner).drain(..));
                while let Poll::Ready(Some(())) = loads.poll_next_unpin(cx) {}
                if polls.has_queued() {
                    continue;
                }
                // A wake-up from another thread either sees `inside` cleared and wakes the task,
                // or is seen here.
                polls.inside.store(false, Ordering::SeqCst);
                if !polls.woken.load(Ordering::SeqCst) && !polls.has_queued() {
                    return Poll::Pending;
                }
            }
            // Still more to do: let the scheduler come round. A tokio resource that has used up
            // the task's budget wakes the task at once, and only a new poll of the task renews
            // the budget, so turning here for ever would never get anywhere.
            polls.inside.store(false, Ordering::SeqCst);
            cx.waker().wake_by_ref();
            Poll::Pending
        })
        .await
    }

    /// Hands a loader's load to the request's `run`, or spawns it when no `run` drives the request.
    fn spawner(&self) -> impl Fn(BoxFuture<'static, ()>) + Send + Sync + 'static {
        let batching = self.clone();
        move |load| {
            let polls = &batching.0;
            if polls.running.load(Ordering::SeqCst) {
                polls.queued.lock().unwrap_or_else(PoisonError::into_inner).push(load);
                // Loads are asked for while `run` polls the request; should one come from
                // elsewhere, the task must still come round to start it.
                polls.wake_task();
            } else {
                tokio::spawn(load);
            }
        }
    }
}

/// The loaders of one request.
pub struct Loaders {
    pub nodes: DataLoader<NodeLoader>,
    pub outgoing: DataLoader<EdgeLoader>,
    pub incoming: DataLoader<EdgeLoader>,
    /// Relationships read with their node (`Loaders::node_with_edges`), by node and direction:
    /// the edge loaders are not asked for these.
    read_with_node: Mutex<HashMap<(NodeId, Direction), Arc<Linked>>>,
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
            read_with_node: Mutex::default(),
        }
    }

    /// Reads one node together with its relationships `directions` and their far ends, where the
    /// store does that for less than a node lookup and an edge lookup (Neo4j: one statement, not
    /// two; SQLite: one read, not two), and keeps the relationships for `read_with_node`; `None`
    /// where it does not.
    pub async fn node_with_edges(
        &self,
        id: &NodeId,
        directions: &[Direction],
    ) -> async_graphql::Result<Option<Option<Arc<Node>>>> {
        let store = &self.nodes.loader().0;
        let Some(read) = store.node_with_edges(id, directions).await.map_err(to_gql)? else {
            return Ok(None);
        };
        let mut kept = self.read_with_node.lock().unwrap_or_else(PoisonError::into_inner);
        for (direction, edges, ends) in read.edges {
            for (id, linked) in linked(std::slice::from_ref(id), direction, edges, ends) {
                kept.insert((id, direction), linked);
            }
        }
        Ok(Some(read.node.map(Arc::new)))
    }

    /// The relationships of a node that way read with the node, if they were.
    pub fn read_with_node(&self, id: &NodeId, direction: Direction) -> Option<Arc<Linked>> {
        self.read_with_node.lock().unwrap_or_else(PoisonError::into_inner).get(&(id.clone(), direction)).cloned()
    }

    pub fn edges(&self, direction: Direction) -> &DataLoader<EdgeLoader> {
        match direction {
            Direction::Out => &self.outgoing,
            Direction::In => &self.incoming,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The batches a loader was asked for, each with the task that loaded it.
    type Batches = Vec<(Vec<u32>, Option<tokio::task::Id>)>;

    /// Answers each key with itself, noting every batch.
    #[derive(Clone, Default)]
    struct Echo(Arc<Mutex<Batches>>);

    impl Loader<u32> for Echo {
        type Value = u32;
        type Error = String;

        async fn load(&self, keys: &[u32]) -> Result<HashMap<u32, u32>, String> {
            // A store call yields at least once; so does this one. Key 0 never answers.
            tokio::task::yield_now().await;
            if keys.contains(&0) {
                std::future::pending::<()>().await;
            }
            let mut sorted = keys.to_vec();
            sorted.sort_unstable();
            self.0.lock().unwrap().push((sorted, tokio::task::try_id()));
            Ok(keys.iter().map(|k| (*k, *k)).collect())
        }
    }

    fn loader(echo: &Echo, batching: &Batching) -> DataLoader<Echo> {
        DataLoader::new(echo.clone(), batching.spawner()).delay(LOADER_DELAY)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_request_run_through_batching_loads_each_round_once_in_its_own_task() {
        for _ in 0..20 {
            let echo = Echo::default();
            let batching = Batching::default();
            let loader = loader(&echo, &batching);
            let request = tokio::spawn(async move {
                let task = tokio::task::id();
                let answer = batching
                    .run(async {
                        let loader = &loader;
                        // Three fields ask side by side; each then asks for one more key.
                        let fields = (1..=3).map(|k| async move {
                            let first = loader.load_one(k).await.unwrap().unwrap();
                            loader.load_one(first * 10).await.unwrap().unwrap()
                        });
                        futures::future::join_all(fields).await
                    })
                    .await;
                (answer, task)
            });
            let (answer, task) = request.await.unwrap();
            assert_eq!(answer, vec![10, 20, 30]);
            let batches = echo.0.lock().unwrap().clone();
            let keys: Vec<Vec<u32>> = batches.iter().map(|(keys, _)| keys.clone()).collect();
            assert_eq!(keys, vec![vec![1, 2, 3], vec![10, 20, 30]], "one store call a round");
            assert!(batches.iter().all(|(_, id)| *id == Some(task)), "loaded by the request's own task");
        }
    }

    #[tokio::test]
    async fn a_long_list_whose_objects_wake_themselves_still_loads_its_round_once() {
        // As async-graphql resolves a list: its items side by side (`try_join_all`, which runs
        // more than thirty in a `FuturesUnordered`), each object's fields in a set of their own,
        // which wakes its object once it has polled them all; the outer set stops its poll after
        // two objects woke themselves.
        let echo = Echo::default();
        let batching = Batching::default();
        let loader = loader(&echo, &batching);
        let answer = batching
            .run(async {
                let loader = &loader;
                let items = (1..=50u32).map(|k| async move {
                    let mut fields: FuturesUnordered<BoxFuture<'_, u32>> = FuturesUnordered::new();
                    fields.push(Box::pin(async move { k }));
                    fields.push(Box::pin(async move { loader.load_one(k).await.unwrap().unwrap() }));
                    let mut sum = 0;
                    while let Some(value) = fields.next().await {
                        sum += value;
                    }
                    Ok::<u32, ()>(sum)
                });
                futures::future::try_join_all(items).await.unwrap()
            })
            .await;
        assert_eq!(answer, (1..=50).map(|k| 2 * k).collect::<Vec<_>>());
        let keys: Vec<Vec<u32>> = echo.0.lock().unwrap().iter().map(|(keys, _)| keys.clone()).collect();
        assert_eq!(keys, vec![(1..=50).collect::<Vec<_>>()], "one store call for the whole list");
    }

    #[tokio::test]
    async fn loads_are_spawned_when_no_run_drives_the_request_and_after_one_ends() {
        let echo = Echo::default();
        let batching = Batching::default();
        let loader = loader(&echo, &batching);
        // A subscription's loaders: nothing runs the request, so the load is a task of its own.
        assert_eq!(loader.load_one(7).await.unwrap(), Some(7));
        // A request given up half-way (its time ran out) leaves no load behind to wait for.
        let cut_short = batching.run(loader.load_one(0));
        assert!(tokio::time::timeout(std::time::Duration::from_millis(50), cut_short).await.is_err());
        assert_eq!(loader.load_one(9).await.unwrap(), Some(9));
        let batches = echo.0.lock().unwrap().clone();
        assert_eq!(batches.iter().map(|(keys, _)| keys.clone()).collect::<Vec<_>>(), vec![vec![7], vec![9]]);
    }

    #[tokio::test]
    async fn a_request_that_uses_up_its_task_budget_still_finishes() {
        // Past the task's budget, tokio's resources wake the task at once and answer pending
        // until the scheduler polls the task anew: `run` must let it.
        let batching = Batching::default();
        let work = batching.run(async {
            for _ in 0..2_000 {
                tokio::task::consume_budget().await;
            }
        });
        tokio::time::timeout(std::time::Duration::from_secs(30), work).await.expect("the request finishes");
    }
}
