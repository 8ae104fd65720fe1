-- API credentials Latchkey issues to its own clients. Only the SHA-256 of a token is stored
-- (`token_hash`); during a regenerate grace period the old token's hash stays in `previous_hash`
-- until `previous_expires_at` (UNIX milliseconds).
CREATE TABLE api_credentials (
    id                  TEXT PRIMARY KEY NOT NULL,
    workspace_id        TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name                TEXT NOT NULL,
    name_key            TEXT NOT NULL,
    role                TEXT NOT NULL CHECK (role IN ('admin', 'member')),
    token_hash          BLOB NOT NULL UNIQUE,
    token_hint          TEXT NOT NULL,
    previous_hash       BLOB,
    previous_expires_at INTEGER,
    enabled             INTEGER NOT NULL,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    last_used_at        INTEGER,
    revision            INTEGER NOT NULL,
    UNIQUE (workspace_id, name_key)
) STRICT;

CREATE INDEX api_credentials_by_previous_hash ON api_credentials (previous_hash);
CREATE INDEX api_credentials_by_workspace ON api_credentials (workspace_id, created_at, id);
