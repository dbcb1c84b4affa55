// pvgraph on Neo4j: foreign ends. A relationship may have one end that is a
// node of a partner's instance, which this store names but does not hold: a
// stub (:ForeignNode {id, organisation, kind}) without the :Node label, so that
// lists, counts, search and traces of local nodes never see it. A stub is
// deleted with its last relationship (see src/store/neo4j/write.rs).
CREATE CONSTRAINT foreign_node_id IF NOT EXISTS
FOR (f:ForeignNode) REQUIRE f.id IS UNIQUE;
