-- pvgraph's embedded store, version 6: a number that every change to the
-- graph moves on. Any row of `nodes`, `edges` or `foreign_edges` written or
-- deleted, by this server or by any other process on the file, adds one
-- within the change's own transaction. A server keeps the nodes and
-- relationships its walks read in memory for as long as the number it read
-- them at is the file's (see `walks.rs`). An import into an empty store sets
-- the triggers aside with the indexes and adds one at its end instead.
CREATE TABLE graph_version (n INTEGER NOT NULL) STRICT;
INSERT INTO graph_version (n) VALUES (1);

CREATE TRIGGER graph_version_nodes_insert AFTER INSERT ON nodes BEGIN UPDATE graph_version SET n = n + 1; END;
CREATE TRIGGER graph_version_nodes_update AFTER UPDATE ON nodes BEGIN UPDATE graph_version SET n = n + 1; END;
CREATE TRIGGER graph_version_nodes_delete AFTER DELETE ON nodes BEGIN UPDATE graph_version SET n = n + 1; END;
CREATE TRIGGER graph_version_edges_insert AFTER INSERT ON edges BEGIN UPDATE graph_version SET n = n + 1; END;
CREATE TRIGGER graph_version_edges_update AFTER UPDATE ON edges BEGIN UPDATE graph_version SET n = n + 1; END;
CREATE TRIGGER graph_version_edges_delete AFTER DELETE ON edges BEGIN UPDATE graph_version SET n = n + 1; END;
CREATE TRIGGER graph_version_foreign_insert AFTER INSERT ON foreign_edges BEGIN UPDATE graph_version SET n = n + 1; END;
CREATE TRIGGER graph_version_foreign_update AFTER UPDATE ON foreign_edges BEGIN UPDATE graph_version SET n = n + 1; END;
CREATE TRIGGER graph_version_foreign_delete AFTER DELETE ON foreign_edges BEGIN UPDATE graph_version SET n = n + 1; END;
