-- The audit log: append-only (no statement here or in the code updates or deletes a row).
CREATE TABLE audit_events (
    id           TEXT PRIMARY KEY NOT NULL,
    workspace_id TEXT,
    at           INTEGER NOT NULL,
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
) STRICT;

CREATE INDEX audit_by_workspace ON audit_events (workspace_id, id);
