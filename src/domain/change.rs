//! A change set: the writes one mutation or one import makes, applied by a
//! store in a single transaction, all or nothing.

use super::*;

pub use super::node::NodePatch;

/// One write.
#[derive(Clone, Debug)]
pub enum Change {
    Create(Node),
    Update { id: NodeId, patch: NodePatch },
    Delete(NodeId),
    Link(Edge),
    Unlink { from: NodeId, kind: RelationshipKind, to: NodeId },
}

/// What one write did, in the order the changes were given.
#[derive(Clone, Debug)]
#[allow(clippy::large_enum_variant)] // short-lived, one per change
pub enum Applied {
    Created(Node),
    Updated {
        before: Node,
        after: Node,
    },
    /// The node and the relationships that went with it.
    Deleted {
        node: Node,
        edges: Vec<Edge>,
    },
    Linked(Edge),
    Unlinked(Edge),
}
