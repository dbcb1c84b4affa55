-- pvgraph's embedded store, version 5: lists read in order. A list filtered by
-- one of its kind's own fields seeks that field's value in an index whose next
-- columns are the list's order, so a page is read in order and the read stops
-- after the page, however many nodes hold the value; the single-column indexes
-- of version 1 left every matching node to be read and sorted for each page.
DROP INDEX principles_by_status;
DROP INDEX experiments_by_status;
DROP INDEX barriers_by_kind;
DROP INDEX learnings_by_kind;
DROP INDEX learnings_by_embedding;

CREATE INDEX principles_by_status_id      ON nodes (json_extract(details, '$.status'), id) WHERE kind = 'PRINCIPLE';
CREATE INDEX principles_by_status_title   ON nodes (json_extract(details, '$.status'), title, id) WHERE kind = 'PRINCIPLE';
CREATE INDEX principles_by_status_created ON nodes (json_extract(details, '$.status'), created_at, id) WHERE kind = 'PRINCIPLE';
CREATE INDEX principles_by_status_updated ON nodes (json_extract(details, '$.status'), updated_at, id) WHERE kind = 'PRINCIPLE';

CREATE INDEX experiments_by_status_id      ON nodes (json_extract(details, '$.status'), id) WHERE kind = 'EXPERIMENT';
CREATE INDEX experiments_by_status_title   ON nodes (json_extract(details, '$.status'), title, id) WHERE kind = 'EXPERIMENT';
CREATE INDEX experiments_by_status_created ON nodes (json_extract(details, '$.status'), created_at, id) WHERE kind = 'EXPERIMENT';
CREATE INDEX experiments_by_status_updated ON nodes (json_extract(details, '$.status'), updated_at, id) WHERE kind = 'EXPERIMENT';

CREATE INDEX barriers_by_kind_id      ON nodes (json_extract(details, '$.kind'), id) WHERE kind = 'BARRIER';
CREATE INDEX barriers_by_kind_title   ON nodes (json_extract(details, '$.kind'), title, id) WHERE kind = 'BARRIER';
CREATE INDEX barriers_by_kind_created ON nodes (json_extract(details, '$.kind'), created_at, id) WHERE kind = 'BARRIER';
CREATE INDEX barriers_by_kind_updated ON nodes (json_extract(details, '$.kind'), updated_at, id) WHERE kind = 'BARRIER';

CREATE INDEX learnings_by_kind_id      ON nodes (json_extract(details, '$.kind'), id) WHERE kind = 'LEARNING';
CREATE INDEX learnings_by_kind_title   ON nodes (json_extract(details, '$.kind'), title, id) WHERE kind = 'LEARNING';
CREATE INDEX learnings_by_kind_created ON nodes (json_extract(details, '$.kind'), created_at, id) WHERE kind = 'LEARNING';
CREATE INDEX learnings_by_kind_updated ON nodes (json_extract(details, '$.kind'), updated_at, id) WHERE kind = 'LEARNING';

CREATE INDEX learnings_by_embedding_id      ON nodes (json_extract(details, '$.embedding'), id) WHERE kind = 'LEARNING';
CREATE INDEX learnings_by_embedding_title   ON nodes (json_extract(details, '$.embedding'), title, id) WHERE kind = 'LEARNING';
CREATE INDEX learnings_by_embedding_created ON nodes (json_extract(details, '$.embedding'), created_at, id) WHERE kind = 'LEARNING';
CREATE INDEX learnings_by_embedding_updated ON nodes (json_extract(details, '$.embedding'), updated_at, id) WHERE kind = 'LEARNING';
