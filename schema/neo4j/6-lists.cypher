// pvgraph on Neo4j: lists read in order. A list filtered by one of its kind's
// own fields seeks the field's value in an index whose next properties are the
// list's order, so that a page is read in order and the read stops after the
// page (see `list_query` in src/store/neo4j/read.rs). Only the id order and the
// title order (the default) have such indexes, as on SQLite (lists.sql): a list
// by date with a field filter still sorts its matching nodes. Idempotent (IF NOT EXISTS).

CREATE INDEX node_status_id IF NOT EXISTS FOR (n:Node) ON (n.kind, n.status, n.id);
CREATE INDEX node_status_title IF NOT EXISTS FOR (n:Node) ON (n.kind, n.status, n.title, n.id);

CREATE INDEX node_barrier_kind_id IF NOT EXISTS FOR (n:Node) ON (n.kind, n.barrierKind, n.id);
CREATE INDEX node_barrier_kind_title IF NOT EXISTS FOR (n:Node) ON (n.kind, n.barrierKind, n.title, n.id);

CREATE INDEX node_learning_kind_id IF NOT EXISTS FOR (n:Node) ON (n.kind, n.learningKind, n.id);
CREATE INDEX node_learning_kind_title IF NOT EXISTS FOR (n:Node) ON (n.kind, n.learningKind, n.title, n.id);

CREATE INDEX node_embedding_id IF NOT EXISTS FOR (n:Node) ON (n.kind, n.embedding, n.id);
CREATE INDEX node_embedding_title IF NOT EXISTS FOR (n:Node) ON (n.kind, n.embedding, n.title, n.id);
