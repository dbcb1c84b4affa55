//! Request-scoped DataLoaders: relationship fields ask for nodes and edges one
//! at a time, and the loaders turn each round of asks into one store call.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::{DataLoader, Loader};

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

/// How long a loader waits for more keys before it asks the store. No wait is
/// needed for batching: the fields of one selection set ask for their keys in
/// the same poll, before the loader's task (spawned on the same worker) runs.
/// async-graphql is built without its `tokio-timer` feature on purpose: its
/// async-io timer is ready at once for a wait of zero, where a tokio sleep
/// ends only on the timer's next millisecond tick (see BENCHMARKS.md).
const LOADER_DELAY: std::time::Duration = std::time::Duration::ZERO;

/// The loaders of one request.
pub struct Loaders {
    pub nodes: DataLoader<NodeLoader>,
    pub outgoing: DataLoader<EdgeLoader>,
    pub incoming: DataLoader<EdgeLoader>,
}

impl Loaders {
    pub fn new(store: &Store) -> Loaders {
        Loaders {
            nodes: DataLoader::new(NodeLoader(store.clone()), tokio::spawn).delay(LOADER_DELAY),
            outgoing: DataLoader::new(EdgeLoader(store.clone(), Direction::Out), tokio::spawn).delay(LOADER_DELAY),
            incoming: DataLoader::new(EdgeLoader(store.clone(), Direction::In), tokio::spawn).delay(LOADER_DELAY),
        }
    }

    pub fn edges(&self, direction: Direction) -> &DataLoader<EdgeLoader> {
        match direction {
            Direction::Out => &self.outgoing,
            Direction::In => &self.incoming,
        }
    }
}
