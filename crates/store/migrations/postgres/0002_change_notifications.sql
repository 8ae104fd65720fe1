-- Change notifications for the caches of every instance sharing this database: a committed change
-- to a credential or an API credential that a cache could hold (its revision, status or enabled
-- flag; a delete) sends NOTIFY latchkey_changes 'credential:<id>' or 'api_credential:<id>'.
-- Recording a use (last_used_at alone) sends nothing.

CREATE FUNCTION latchkey_notify_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('latchkey_changes', TG_ARGV[0] || ':' || OLD.id);
    RETURN NULL;
END
$$;

CREATE TRIGGER credentials_changed AFTER UPDATE ON credentials FOR EACH ROW
    WHEN (OLD.revision IS DISTINCT FROM NEW.revision
          OR OLD.status IS DISTINCT FROM NEW.status
          OR OLD.enabled IS DISTINCT FROM NEW.enabled)
    EXECUTE FUNCTION latchkey_notify_change('credential');

CREATE TRIGGER credentials_deleted AFTER DELETE ON credentials FOR EACH ROW
    EXECUTE FUNCTION latchkey_notify_change('credential');

CREATE TRIGGER api_credentials_changed AFTER UPDATE ON api_credentials FOR EACH ROW
    WHEN (OLD.revision IS DISTINCT FROM NEW.revision
          OR OLD.enabled IS DISTINCT FROM NEW.enabled
          OR OLD.token_hash IS DISTINCT FROM NEW.token_hash
          OR OLD.previous_hash IS DISTINCT FROM NEW.previous_hash
          OR OLD.previous_expires_at IS DISTINCT FROM NEW.previous_expires_at)
    EXECUTE FUNCTION latchkey_notify_change('api_credential');

CREATE TRIGGER api_credentials_deleted AFTER DELETE ON api_credentials FOR EACH ROW
    EXECUTE FUNCTION latchkey_notify_change('api_credential');
