// pvgraph on Neo4j: ranked full-text search. The English analyser stems words
// (Porter), as SQLite's FTS5 `porter unicode61` tokenizer does; it also drops
// English stop words, which therefore never match on their own.
// `searchText` holds the words of a node's long fields (description, statement,
// hypothesis, quote, definition, rationale, purpose, failureNotes, publisher).
CREATE FULLTEXT INDEX node_words IF NOT EXISTS
FOR (n:Node) ON EACH [n.title, n.searchText]
OPTIONS {indexConfig: {`fulltext.analyzer`: 'english', `fulltext.eventually_consistent`: false}};
