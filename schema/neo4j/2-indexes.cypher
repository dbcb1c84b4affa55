// pvgraph on Neo4j: indexes for lists, filters and lookups by kind and owner.
// Idempotent (IF NOT EXISTS); see 1-constraints.cypher.

CREATE INDEX node_kind IF NOT EXISTS FOR (n:Node) ON (n.kind);
CREATE INDEX node_organisation IF NOT EXISTS FOR (n:Node) ON (n.organisation);
CREATE INDEX node_kind_organisation IF NOT EXISTS FOR (n:Node) ON (n.kind, n.organisation);

// The orders lists are read in.
CREATE INDEX node_title IF NOT EXISTS FOR (n:Node) ON (n.title);
CREATE INDEX node_created_at IF NOT EXISTS FOR (n:Node) ON (n.createdAt);
CREATE INDEX node_updated_at IF NOT EXISTS FOR (n:Node) ON (n.updatedAt);

// The kinds' own fields that lists filter by, copied out of `details`.
CREATE INDEX node_status IF NOT EXISTS FOR (n:Node) ON (n.status);
CREATE INDEX node_barrier_kind IF NOT EXISTS FOR (n:Node) ON (n.barrierKind);
CREATE INDEX node_learning_kind IF NOT EXISTS FOR (n:Node) ON (n.learningKind);
CREATE INDEX node_severity IF NOT EXISTS FOR (n:Node) ON (n.severity);
CREATE INDEX node_evidence_level IF NOT EXISTS FOR (n:Node) ON (n.evidenceLevel);
CREATE INDEX node_confidence IF NOT EXISTS FOR (n:Node) ON (n.confidence);
CREATE INDEX node_embedding IF NOT EXISTS FOR (n:Node) ON (n.embedding);

// Influences by date (influences across organisations, oldest first).
CREATE INDEX influenced_on IF NOT EXISTS FOR ()-[r:INFLUENCED]-() ON (r.on);
