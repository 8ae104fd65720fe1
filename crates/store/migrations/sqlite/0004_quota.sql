-- Weekly request quotas per provider account (Clari Copilot: 100,000 a week from Sunday 00:00
-- GMT): the week being counted (its start, UNIX seconds) and the requests sent in it. Kept here
-- rather than in memory so that a restart, or the CLI beside `serve`, never starts a week anew.
CREATE TABLE quota_usage (
    key  TEXT PRIMARY KEY NOT NULL,
    week INTEGER NOT NULL,
    used INTEGER NOT NULL
) STRICT;
