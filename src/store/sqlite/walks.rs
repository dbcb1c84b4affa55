//! What walks (traces and path searches) read, kept in memory for the next
//! walks. A walk's time on SQLite goes on its rows, not its statements: an
//! index seek on text ids and the decoding of each relationship and node
//! (benches/HISTORY.md, "Where a walk's time goes on SQLite"). Most walks go over
//! the same parts of the graph again (an analyst's trace from one learning,
//! then its paths), so the nodes and relationship lists they read are kept
//! here and the next walk takes them without asking SQLite. A node's
//! relationship fields read the same way (`Reader::visible_edges_and_ends`:
//! a node read with its relationships, the relationships of a list's nodes),
//! so a node page and the walks from it share what they read.
//!
//! What is kept must be what the file holds. Every change to `nodes`, `edges`
//! or `foreign_edges` moves the file's graph version on (schema version 6,
//! `walks.sql`), in the change's own transaction, whichever process writes.
//! A walk reads the version first in its read transaction, and uses what is
//! kept only when it was read at that same version: so it sees exactly what
//! its snapshot holds. A walk that finds a newer version empties the cache and
//! fills it again at the new one; one that finds an older version (its
//! snapshot began before a change others already see) reads everything from
//! SQLite and keeps nothing.
//!
//! An id read and found to be no node (the far end of a relationship with a
//! partner's node) is kept as such, so that it is not asked for again either.
//!
//! The cache holds at most `room` entries (a node, an id held as no node, or one
//! node's relationships one way; `WALK_CACHE_ENTRIES` by default), and starts
//! over when full: a walk caps its own nodes, so a full cache means the graph's
//! busy part moved.

use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

use foldhash::{HashMap, HashMapExt as _, HashSet};

use crate::domain::{Audience, Edge, Node, NodeId};
use crate::store::{CacheFigures, Direction};

/// Nodes and relationship lists read at one version of the graph.
pub(super) struct WalkCache {
    held: RwLock<Held>,
    room: usize,
    /// Entries looked up and found held, and not found (`/metrics`).
    hits: AtomicU64,
    misses: AtomicU64,
    /// Times all that was held was dropped: for a newer version of the graph, or for room.
    dropped_changed: AtomicU64,
    dropped_full: AtomicU64,
}

struct Held {
    /// The graph's version these were read at.
    version: i64,
    /// Nodes by id; `None` for an id asked for and not found, such as the far end of a
    /// relationship to a partner's node, so that it is not asked for again at this version.
    nodes: HashMap<NodeId, Option<Node>>,
    /// Every relationship of a node that way (`Direction::Out`, then `In`), those with a
    /// foreign end too, as `read::EDGES` reads them.
    edges: [HashMap<NodeId, Vec<Edge>>; 2],
}

impl Held {
    fn at(version: i64) -> Held {
        Held { version, nodes: HashMap::new(), edges: [HashMap::new(), HashMap::new()] }
    }

    fn entries(&self) -> usize {
        self.nodes.len() + self.edges[0].len() + self.edges[1].len()
    }
}

fn way(direction: Direction) -> usize {
    match direction {
        Direction::Out => 0,
        Direction::In => 1,
    }
}

impl WalkCache {
    pub(super) fn new(room: usize) -> WalkCache {
        WalkCache {
            held: RwLock::new(Held::at(i64::MIN)),
            room,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            dropped_changed: AtomicU64::new(0),
            dropped_full: AtomicU64::new(0),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Held> {
        self.held.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Held> {
        self.held.write().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether a walk whose snapshot is at `version` may use the cache: when it holds that
    /// version, or an older one, which it then drops for this one. A cache with no room is
    /// never used, so its walks read the file with the statements they use without one.
    pub(super) fn enter(&self, version: i64) -> bool {
        if self.room == 0 {
            return false;
        }
        let held = self.read().version;
        if held == version {
            return true;
        }
        if held > version {
            return false;
        }
        let mut held = self.write();
        if held.version < version {
            if held.entries() > 0 {
                self.dropped_changed.fetch_add(1, Ordering::Relaxed);
            }
            *held = Held::at(version);
        }
        held.version == version
    }

    /// What the cache holds and how it served since it was made.
    pub(super) fn figures(&self) -> CacheFigures {
        let load = |n: &AtomicU64| n.load(Ordering::Relaxed);
        CacheFigures {
            entries: self.read().entries() as u64,
            room: self.room as u64,
            hits: load(&self.hits),
            misses: load(&self.misses),
            dropped_changed: load(&self.dropped_changed),
            dropped_full: load(&self.dropped_full),
        }
    }

    /// For each of `ids` in their order, what `look` finds of it in what is held at `version`
    /// (`None` for all when the cache holds another version).
    fn look<T>(&self, version: i64, ids: &[&NodeId], look: impl Fn(&Held, &NodeId) -> Option<T>) -> Vec<Option<T>> {
        let held = self.read();
        let found: Vec<Option<T>> = if held.version == version {
            ids.iter().map(|id| look(&held, id)).collect()
        } else {
            ids.iter().map(|_| None).collect()
        };
        drop(held);
        let hits = found.iter().flatten().count();
        self.hits.fetch_add(hits as u64, Ordering::Relaxed);
        self.misses.fetch_add((found.len() - hits) as u64, Ordering::Relaxed);
        found
    }

    /// What is held at `version` of each of `ids`, in their order: `None` for those not held,
    /// `Some(None)` for those held as no node.
    pub(super) fn nodes(&self, version: i64, ids: &[&NodeId]) -> Vec<Option<Option<Node>>> {
        self.look(version, ids, |held, id| held.nodes.get(id).cloned())
    }

    /// Whether the audience may see each node of `ids` held at `version`, read where it is kept
    /// (`None` for those not held; no node is seen by nobody).
    pub(super) fn seen(&self, version: i64, ids: &[&NodeId], audience: &Audience) -> Vec<Option<bool>> {
        self.look(version, ids, |held, id| {
            held.nodes.get(id).map(|node| node.as_ref().is_some_and(|n| audience.sees_node(n)))
        })
    }

    /// The relationships of `ids` that way held at `version`, in their order (`None` for
    /// those not held).
    pub(super) fn edges(&self, version: i64, direction: Direction, ids: &[&NodeId]) -> Vec<Option<Vec<Edge>>> {
        self.look(version, ids, |held, id| held.edges[way(direction)].get(id).cloned())
    }

    /// Keeps nodes read at `version`, unless the cache moved on meanwhile.
    #[cfg(test)]
    pub(super) fn keep_nodes(&self, version: i64, nodes: &[Node]) {
        self.keep_read(version, &[], nodes);
    }

    /// Keeps what a read of `asked` found at `version`: the nodes `found`, and as no node each
    /// id asked for that is not among them.
    pub(super) fn keep_read(&self, version: i64, asked: &[NodeId], found: &[Node]) {
        let present: HashSet<&NodeId> = found.iter().map(|n| &n.id).collect();
        let absent: Vec<&NodeId> = asked.iter().filter(|id| !present.contains(id)).collect();
        self.keep(version, found.len() + absent.len(), |held| {
            for node in found {
                held.nodes.insert(node.id.clone(), Some(node.clone()));
            }
            for id in absent {
                held.nodes.insert(id.clone(), None);
            }
        });
    }

    /// Keeps the relationships of nodes that way, each node's whole list, read at `version`.
    pub(super) fn keep_edges(&self, version: i64, direction: Direction, lists: Vec<(NodeId, Vec<Edge>)>) {
        self.keep(version, lists.len(), |held| held.edges[way(direction)].extend(lists));
    }

    fn keep(&self, version: i64, adding: usize, add: impl FnOnce(&mut Held)) {
        if adding == 0 || adding > self.room {
            return;
        }
        let mut held = self.write();
        if held.version != version {
            return;
        }
        let full = held.entries() + adding > self.room;
        if full {
            self.dropped_full.fetch_add(1, Ordering::Relaxed);
        }
        let dropped = full.then(|| std::mem::replace(&mut *held, Held::at(version)));
        add(&mut held);
        // What a full cache held is freed after the lock is let go: other walks need not wait.
        drop(held);
        drop(dropped);
    }

    /// How many entries the cache holds.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.read().entries()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str) -> Node {
        let serde_json::Value::Object(record) = serde_json::json!({"id": id, "title": id, "definition": "d"}) else {
            unreachable!()
        };
        Node::from_record(record, crate::domain::now()).unwrap()
    }

    #[test]
    fn a_walk_uses_what_was_read_at_its_own_version_only() {
        let cache = WalkCache::new(16);
        let a = node("kc:value:a");
        assert!(cache.enter(5));
        cache.keep_nodes(5, std::slice::from_ref(&a));
        assert_eq!(cache.nodes(5, &[&a.id]), vec![Some(Some(a.clone()))]);
        // Who may see a kept node is read where it is kept; a node not kept is not known.
        let mut private = node("kc:value:private");
        private.visibility = crate::domain::Visibility::Private;
        cache.keep_nodes(5, std::slice::from_ref(&private));
        let ids = [&a.id, &private.id, &node("kc:value:b").id];
        assert_eq!(cache.seen(5, &ids, &Audience::Public), vec![Some(true), Some(false), None]);
        assert_eq!(cache.seen(5, &ids, &Audience::Member("kc".into())), vec![Some(true), Some(true), None]);
        assert_eq!(cache.seen(5, &ids, &Audience::Member("zz".into())), vec![Some(true), Some(false), None]);
        // An older snapshot neither uses nor changes what is held.
        assert!(!cache.enter(4));
        cache.keep_nodes(4, &[node("kc:value:b")]);
        assert_eq!(cache.nodes(4, &[&a.id]), vec![None]);
        assert_eq!(cache.seen(4, &[&a.id], &Audience::Everything), vec![None]);
        assert_eq!(cache.len(), 2);
        // A newer one starts over; what the older walk then keeps is dropped.
        assert!(cache.enter(6));
        assert_eq!(cache.nodes(6, &[&a.id]), vec![None]);
        cache.keep_nodes(5, std::slice::from_ref(&a));
        assert_eq!(cache.len(), 0);
        // Every id looked up counts, found or not, and the one start over for a newer version.
        let figures = cache.figures();
        assert_eq!((figures.hits, figures.misses), (7, 6), "{figures:?}");
        assert_eq!((figures.dropped_changed, figures.dropped_full, figures.entries, figures.room), (1, 0, 0, 16));
    }

    #[test]
    fn an_id_read_and_not_found_is_held_as_no_node() {
        let cache = WalkCache::new(16);
        let a = node("kc:value:a");
        let gone = node("kc:value:gone").id;
        assert!(cache.enter(1));
        cache.keep_read(1, &[a.id.clone(), gone.clone()], std::slice::from_ref(&a));
        assert_eq!(cache.len(), 2);
        let unknown = node("kc:value:unknown").id;
        assert_eq!(cache.nodes(1, &[&a.id, &gone, &unknown]), vec![Some(Some(a.clone())), Some(None), None]);
        assert_eq!(
            cache.seen(1, &[&a.id, &gone, &unknown], &Audience::Everything),
            vec![Some(true), Some(false), None]
        );
        // Held as no node is a hit: only the id never read is a miss.
        assert_eq!((cache.figures().hits, cache.figures().misses), (4, 2));
        // A newer version forgets it, as it forgets nodes.
        assert!(cache.enter(2));
        assert_eq!(cache.nodes(2, &[&gone]), vec![None]);
    }

    #[test]
    fn a_full_cache_starts_over() {
        let cache = WalkCache::new(3);
        assert!(cache.enter(1));
        let nodes: Vec<Node> = ["a", "b", "c", "d"].iter().map(|n| node(&format!("kc:value:{n}"))).collect();
        cache.keep_nodes(1, &nodes[..2]);
        cache.keep_edges(1, Direction::Out, vec![(nodes[0].id.clone(), Vec::new())]);
        assert_eq!(cache.len(), 3);
        cache.keep_nodes(1, &nodes[2..3]);
        assert_eq!(cache.len(), 1);
        assert_eq!((cache.figures().dropped_full, cache.figures().dropped_changed), (1, 0));
        assert_eq!(cache.nodes(1, &[&nodes[0].id, &nodes[2].id]), vec![None, Some(Some(nodes[2].clone()))]);
        // More than the whole room at once is not kept.
        cache.keep_nodes(1, &[nodes[0].clone(), nodes[1].clone(), nodes[2].clone(), nodes[3].clone()]);
        assert_eq!(cache.len(), 1);
        // A cache with no room is not used at all.
        let none = WalkCache::new(0);
        assert!(!none.enter(1));
        none.keep_nodes(1, &nodes[..1]);
        assert_eq!(none.len(), 0);
    }
}
