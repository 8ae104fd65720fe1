-- Weekly request quotas per provider account (Clari Copilot: 100,000 a week from Sunday 00:00
-- GMT), shared by every instance on this database: the week being counted (its start, UNIX
-- seconds) and the requests sent in it. A logged table: a crash must not start a week anew.
CREATE TABLE quota_usage (
    key  TEXT COLLATE "C" PRIMARY KEY,
    week BIGINT NOT NULL,
    used BIGINT NOT NULL
);
