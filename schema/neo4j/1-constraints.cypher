// pvgraph on Neo4j: constraints. Applied at every start-up, one statement at a
// time; each is idempotent (IF NOT EXISTS). A new rule is a new statement (or a
// new file), never an edit of one already applied.

// Every node carries the label :Node and a unique, readable id; the constraint's
// index serves every lookup by id.
CREATE CONSTRAINT node_id IF NOT EXISTS
FOR (n:Node) REQUIRE n.id IS UNIQUE;

// The single lock node that serialises change sets (see src/store/neo4j/write.rs).
CREATE CONSTRAINT change_lock_id IF NOT EXISTS
FOR (l:ChangeLock) REQUIRE l.id IS UNIQUE;
