-- Version 2: ranked full-text search (FTS5). The index keeps each node's title
-- and the words of its long fields, as the node_text view spells them once;
-- triggers keep it in step with `nodes`.
CREATE VIRTUAL TABLE node_words USING fts5 (title, body, tokenize = 'porter unicode61');

CREATE VIEW node_text (seq, title, body) AS
SELECT seq, title, description || ' ' ||
    concat_ws(' ', json_extract(details, '$.statement'), json_extract(details, '$.hypothesis'),
        json_extract(details, '$.quote'), json_extract(details, '$.definition'),
        json_extract(details, '$.rationale'), json_extract(details, '$.purpose'),
        json_extract(details, '$.failureNotes'), json_extract(details, '$.publisher'))
FROM nodes;

CREATE TRIGGER node_words_insert AFTER INSERT ON nodes BEGIN
    INSERT INTO node_words (rowid, title, body) SELECT seq, title, body FROM node_text WHERE seq = new.seq;
END;

CREATE TRIGGER node_words_delete AFTER DELETE ON nodes BEGIN
    DELETE FROM node_words WHERE rowid = old.seq;
END;

CREATE TRIGGER node_words_update AFTER UPDATE ON nodes BEGIN
    DELETE FROM node_words WHERE rowid = old.seq;
    INSERT INTO node_words (rowid, title, body) SELECT seq, title, body FROM node_text WHERE seq = new.seq;
END;

INSERT INTO node_words (rowid, title, body) SELECT seq, title, body FROM node_text;

-- Lists of one relationship kind, e.g. influences across organisations.
CREATE INDEX edges_by_kind ON edges (kind);
