-- The proxy's rate-limit throttle, shared by every instance on this database: the send times
-- granted per provider account (UNLOGGED: after a crash the table is emptied, which only forgets
-- grants at most one window old). Times are microseconds of this server's clock, so instances
-- with skewed clocks still agree.

CREATE UNLOGGED TABLE throttle_grants (
    key TEXT COLLATE "C" NOT NULL,
    at  BIGINT NOT NULL
);

CREATE INDEX throttle_grants_by_key ON throttle_grants (key, at);

-- Reserve a send time for `p_key` so that no window of `p_window_us` holds more than
-- `p_requests` grants. Returns the wait in microseconds (>= 0), or, when the slot is further away
-- than `p_max_wait_us`, minus that distance (nothing is reserved). Serialised per key by a
-- transaction-scoped advisory lock.
CREATE FUNCTION latchkey_reserve(p_key TEXT, p_requests INT, p_window_us BIGINT, p_max_wait_us BIGINT)
RETURNS BIGINT
LANGUAGE plpgsql AS $$
DECLARE
    now_us BIGINT;
    nth    BIGINT;
    latest BIGINT;
    slot   BIGINT;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('latchkey_throttle:' || p_key, 0));
    now_us := (extract(epoch FROM clock_timestamp()) * 1000000)::BIGINT;
    DELETE FROM throttle_grants WHERE key = p_key AND at <= now_us - p_window_us;
    SELECT max(at) INTO latest FROM throttle_grants WHERE key = p_key;
    SELECT at INTO nth FROM throttle_grants WHERE key = p_key
        ORDER BY at DESC OFFSET GREATEST(p_requests, 1) - 1 LIMIT 1;
    IF nth IS NULL THEN
        slot := now_us;
    ELSE
        slot := GREATEST(nth + p_window_us, now_us);
    END IF;
    slot := GREATEST(slot, COALESCE(latest, slot));
    IF slot - now_us > p_max_wait_us THEN
        RETURN -(slot - now_us);
    END IF;
    INSERT INTO throttle_grants (key, at) VALUES (p_key, slot);
    RETURN slot - now_us;
END
$$;
