-- pvgraph's embedded store, version 4: relationships with one foreign end.
-- A foreign end is a node of a partner's instance, named by its id and never
-- stored here. `edges` keeps its rule that both ends exist; a relationship
-- with one foreign end lives here instead, with its local end still checked
-- and cascaded, so "which relationships leave this instance" is one lookup.
CREATE TABLE foreign_edges (
    local      TEXT NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    -- 1: local -> foreign, 0: foreign -> local.
    outgoing   INTEGER NOT NULL CHECK (outgoing IN (0, 1)),
    kind       TEXT NOT NULL,
    foreign_id TEXT NOT NULL,
    -- The foreign id's organisation, the partner that holds its node.
    owner      TEXT NOT NULL,
    assertion  TEXT NOT NULL,
    props      TEXT NOT NULL,
    PRIMARY KEY (local, outgoing, kind, foreign_id)
) STRICT, WITHOUT ROWID;

CREATE INDEX foreign_edges_by_foreign ON foreign_edges (foreign_id, kind);
