-- pvgraph's embedded store, version 1.
-- Every node kind shares one table: the common fields are columns, the kind's
-- own fields are a JSON object in `details`, with indexes on the ones lists
-- filter by.
CREATE TABLE nodes (
    seq          INTEGER PRIMARY KEY,
    id           TEXT NOT NULL UNIQUE,
    kind         TEXT NOT NULL,
    organisation TEXT NOT NULL,
    title        TEXT NOT NULL,
    description  TEXT NOT NULL,
    tags         TEXT NOT NULL,
    visibility   TEXT NOT NULL,
    assertion    TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    details      TEXT NOT NULL
) STRICT;

CREATE INDEX nodes_by_title   ON nodes (kind, title, id);
CREATE INDEX nodes_by_created ON nodes (kind, created_at, id);
CREATE INDEX nodes_by_updated ON nodes (kind, updated_at, id);
CREATE INDEX nodes_by_owner   ON nodes (kind, organisation, title, id);

CREATE INDEX principles_by_status ON nodes (json_extract(details, '$.status')) WHERE kind = 'PRINCIPLE';
CREATE INDEX experiments_by_status ON nodes (json_extract(details, '$.status')) WHERE kind = 'EXPERIMENT';
CREATE INDEX barriers_by_kind ON nodes (json_extract(details, '$.kind')) WHERE kind = 'BARRIER';
CREATE INDEX learnings_by_kind ON nodes (json_extract(details, '$.kind')) WHERE kind = 'LEARNING';
CREATE INDEX learnings_by_embedding ON nodes (json_extract(details, '$.embedding')) WHERE kind = 'LEARNING';

CREATE TABLE edges (
    src       TEXT NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    kind      TEXT NOT NULL,
    dst       TEXT NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    assertion TEXT NOT NULL,
    props     TEXT NOT NULL,
    PRIMARY KEY (src, kind, dst)
) STRICT, WITHOUT ROWID;

CREATE INDEX edges_by_dst ON edges (dst, kind, src);
