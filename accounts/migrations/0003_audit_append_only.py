from django.db import migrations

# UPDATE and DELETE on the audit log are refused by the database itself, so no
# code path (admin, shell, a bug) can rewrite history; deleting a user may only
# clear actor_id. Retention may delete old
# rows only inside a transaction that sets archivist.audit_retention = 'on'.
FORWARD = """
CREATE FUNCTION accounts_auditevent_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('archivist.audit_retention', true) = 'on' THEN
        RETURN OLD;
    END IF;
    -- Deleting a user nulls actor_id (the username stays); nothing else may change.
    IF TG_OP = 'UPDATE' AND NEW.actor_id IS NULL
       AND (to_jsonb(NEW) - 'actor_id') = (to_jsonb(OLD) - 'actor_id') THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'the audit log is append-only (% refused)', TG_OP;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER accounts_auditevent_append_only
    BEFORE UPDATE OR DELETE ON accounts_auditevent
    FOR EACH ROW EXECUTE FUNCTION accounts_auditevent_append_only();
"""
BACKWARD = """
DROP TRIGGER IF EXISTS accounts_auditevent_append_only ON accounts_auditevent;
DROP FUNCTION IF EXISTS accounts_auditevent_append_only();
"""


class Migration(migrations.Migration):
    dependencies = [("accounts", "0002_tokens_audit")]
    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
