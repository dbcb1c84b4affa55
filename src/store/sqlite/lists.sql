-- pvgraph's embedded store, version 5: lists read in order. A list filtered by
-- one of its kind's own fields seeks that field's value in an index whose next
-- columns are the list's order, so a page is read in order and the read stops
-- after the page, however many nodes hold the value; the single-column indexes
-- of version 1 left every matching node to be read and sorted for each page.
-- Only the id order and the title order (the default) have such indexes:
-- each costs an index entry per node of the kind at every write and import,
-- and a list by date with a field filter still sorts its matching nodes, as
-- every filtered list did before.
DROP INDEX principles_by_status;
DROP INDEX experiments_by_status;
DROP INDEX barriers_by_kind;
DROP INDEX learnings_by_kind;
DROP INDEX learnings_by_embedding;

CREATE INDEX principles_by_status_id ON nodes (json_extract(details, '$.status'), id) WHERE kind = 'PRINCIPLE';
CREATE INDEX principles_by_status_title ON nodes (json_extract(details, '$.status'), title, id) WHERE kind = 'PRINCIPLE';

CREATE INDEX experiments_by_status_id ON nodes (json_extract(details, '$.status'), id) WHERE kind = 'EXPERIMENT';
CREATE INDEX experiments_by_status_title ON nodes (json_extract(details, '$.status'), title, id) WHERE kind = 'EXPERIMENT';

CREATE INDEX barriers_by_kind_id ON nodes (json_extract(details, '$.kind'), id) WHERE kind = 'BARRIER';
CREATE INDEX barriers_by_kind_title ON nodes (json_extract(details, '$.kind'), title, id) WHERE kind = 'BARRIER';

CREATE INDEX learnings_by_kind_id ON nodes (json_extract(details, '$.kind'), id) WHERE kind = 'LEARNING';
CREATE INDEX learnings_by_kind_title ON nodes (json_extract(details, '$.kind'), title, id) WHERE kind = 'LEARNING';

CREATE INDEX learnings_by_embedding_id ON nodes (json_extract(details, '$.embedding'), id) WHERE kind = 'LEARNING';
CREATE INDEX learnings_by_embedding_title ON nodes (json_extract(details, '$.embedding'), title, id) WHERE kind = 'LEARNING';
