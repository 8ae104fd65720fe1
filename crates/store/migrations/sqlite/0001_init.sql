-- Latchkey's embedded store. Timestamps are UNIX milliseconds (UTC).

CREATE TABLE meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value BLOB NOT NULL
) STRICT;

CREATE TABLE workspaces (
    id         TEXT PRIMARY KEY NOT NULL,
    slug       TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE credentials (
    id            TEXT PRIMARY KEY NOT NULL,
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    provider      TEXT NOT NULL,
    name          TEXT NOT NULL,
    name_key      TEXT NOT NULL,
    description   TEXT NOT NULL,
    settings      TEXT NOT NULL,
    secret_hints  TEXT NOT NULL,
    envelope      BLOB NOT NULL,
    key_id        TEXT NOT NULL,
    status        TEXT NOT NULL,
    status_reason TEXT,
    enabled       INTEGER NOT NULL,
    verified_at   INTEGER,
    identity      TEXT,
    last_used_at  INTEGER,
    revision      INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    UNIQUE (workspace_id, name_key)
) STRICT;

CREATE INDEX credentials_by_workspace ON credentials (workspace_id, id);
CREATE INDEX credentials_by_key ON credentials (key_id);
