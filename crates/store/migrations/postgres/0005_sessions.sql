-- Web page sessions ended by signing out. The session cookie is sealed and carries its own id and
-- expiry; signing out records the id here until that expiry (UNIX milliseconds), so a copy of the
-- cookie is refused by every instance on this database. Rows past their expiry are pruned.
CREATE TABLE revoked_sessions (
    id         TEXT COLLATE "C" PRIMARY KEY,
    expires_at BIGINT NOT NULL
);

CREATE INDEX revoked_sessions_by_expiry ON revoked_sessions (expires_at);
