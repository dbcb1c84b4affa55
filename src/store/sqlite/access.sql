-- pvgraph's embedded store, version 3: who may come in, and what they changed.
-- API tokens are kept only as the SHA-256 of the token; `id` is its public part.
CREATE TABLE api_tokens (
    id           TEXT PRIMARY KEY,
    hash         TEXT NOT NULL UNIQUE,
    organisation TEXT NOT NULL,
    role         TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    revoked_at   TEXT
) STRICT;

-- One row per change set made through the API, written in the change's own transaction.
CREATE TABLE audit_log (
    id           TEXT PRIMARY KEY,
    at           TEXT NOT NULL,
    organisation TEXT NOT NULL,
    role         TEXT NOT NULL,
    subject      TEXT NOT NULL,
    operation    TEXT NOT NULL,
    changes      TEXT NOT NULL
) STRICT;

CREATE INDEX audit_by_organisation ON audit_log (organisation, at, id);
