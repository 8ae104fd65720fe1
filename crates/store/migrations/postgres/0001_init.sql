-- Latchkey on PostgreSQL: the same tables as the SQLite store (migrations/sqlite 0001–0003).
-- Timestamps are UNIX milliseconds (UTC). Ids and name keys compare byte-wise (COLLATE "C") so
-- paging by id and uniqueness by name key are the same as on SQLite whatever the database's locale.

CREATE TABLE meta (
    key   TEXT COLLATE "C" PRIMARY KEY,
    value BYTEA NOT NULL
);

CREATE TABLE workspaces (
    id         TEXT COLLATE "C" PRIMARY KEY,
    slug       TEXT COLLATE "C" NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);

CREATE TABLE credentials (
    id            TEXT COLLATE "C" PRIMARY KEY,
    workspace_id  TEXT COLLATE "C" NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    provider      TEXT NOT NULL,
    name          TEXT NOT NULL,
    name_key      TEXT COLLATE "C" NOT NULL,
    description   TEXT NOT NULL,
    settings      TEXT NOT NULL,
    secret_hints  TEXT NOT NULL,
    envelope      BYTEA NOT NULL,
    key_id        TEXT COLLATE "C" NOT NULL,
    status        TEXT NOT NULL,
    status_reason TEXT,
    enabled       BOOLEAN NOT NULL,
    verified_at   BIGINT,
    identity      TEXT,
    last_used_at  BIGINT,
    revision      BIGINT NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    UNIQUE (workspace_id, name_key)
);

CREATE INDEX credentials_by_workspace ON credentials (workspace_id, id);
CREATE INDEX credentials_by_key ON credentials (key_id);

-- The audit log: append-only (no statement here or in the code updates or deletes a row).
CREATE TABLE audit_events (
    id           TEXT COLLATE "C" PRIMARY KEY,
    workspace_id TEXT COLLATE "C",
    at           BIGINT NOT NULL,
    actor_kind   TEXT NOT NULL,
    actor_id     TEXT,
    actor_name   TEXT,
    action       TEXT NOT NULL,
    target_kind  TEXT,
    target_id    TEXT,
    target_name  TEXT,
    outcome      TEXT NOT NULL,
    detail       TEXT,
    request_id   TEXT,
    client_addr  TEXT
);

CREATE INDEX audit_by_workspace ON audit_events (workspace_id, id);

-- API credentials Latchkey issues to its own clients. Only the SHA-256 of a token is stored
-- (`token_hash`); during a regenerate grace period the old token's hash stays in `previous_hash`
-- until `previous_expires_at` (UNIX milliseconds).
CREATE TABLE api_credentials (
    id                  TEXT COLLATE "C" PRIMARY KEY,
    workspace_id        TEXT COLLATE "C" NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name                TEXT NOT NULL,
    name_key            TEXT COLLATE "C" NOT NULL,
    role                TEXT NOT NULL CHECK (role IN ('admin', 'member')),
    token_hash          BYTEA NOT NULL UNIQUE,
    token_hint          TEXT NOT NULL,
    previous_hash       BYTEA,
    previous_expires_at BIGINT,
    enabled             BOOLEAN NOT NULL,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL,
    last_used_at        BIGINT,
    revision            BIGINT NOT NULL,
    UNIQUE (workspace_id, name_key)
);

CREATE INDEX api_credentials_by_previous_hash ON api_credentials (previous_hash);
CREATE INDEX api_credentials_by_workspace ON api_credentials (workspace_id, created_at, id);
