// pvgraph on Neo4j: API tokens and the audit trail. Neither carries the :Node
// label, so no read of the graph sees them. Idempotent (IF NOT EXISTS).

// API tokens, kept only as the SHA-256 of the token; `id` is the public part.
CREATE CONSTRAINT api_token_id IF NOT EXISTS
FOR (t:ApiToken) REQUIRE t.id IS UNIQUE;
CREATE CONSTRAINT api_token_hash IF NOT EXISTS
FOR (t:ApiToken) REQUIRE t.hash IS UNIQUE;

// One entry per change set made through the API, in the change's transaction.
CREATE CONSTRAINT audit_entry_id IF NOT EXISTS
FOR (a:AuditEntry) REQUIRE a.id IS UNIQUE;
CREATE INDEX audit_entry_organisation_at IF NOT EXISTS FOR (a:AuditEntry) ON (a.organisation, a.at);
