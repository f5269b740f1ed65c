-- Who is sending, and whether they are still alive, known from PostgreSQL itself: each `send`
-- run registers here and holds the session-level advisory lock (7242018, id) on a connection
-- of its own for the whole run. PostgreSQL releases that lock the moment the process's
-- connection goes away (a crash, kill -9, an OOM kill), so a claim whose sender's lock is free
-- can be taken at once; the lease remains only for a sender alive but hung or cut off.
-- A row is only a name for display (host:pid, pace); liveness is the lock, never the row.
CREATE TABLE senders (
    -- integer, so that it is the advisory lock's second key.
    id            integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    campaign_id   bigint NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    host          text NOT NULL,
    pid           integer NOT NULL,
    -- The run's pace, for `status` to estimate from: messages a second (NULL: no limit).
    rate_per_second double precision CHECK (rate_per_second > 0),
    concurrency   integer NOT NULL CHECK (concurrency > 0),
    daily_cap     integer CHECK (daily_cap >= 0),
    started_at    timestamptz NOT NULL DEFAULT now()
);

-- The sender whose claim this is, while `sending`. No foreign key: a departed sender's row may
-- go while its claims wait to be taken; ids are never reused.
ALTER TABLE deliveries ADD COLUMN sender_id integer;

-- `pause` and `cancel` (or anything else that changes a campaign's status) tell running
-- senders at once, so they stop within the message in hand rather than at their next batch.
CREATE FUNCTION campaigns_notify_status() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('lscp_mail_campaign', NEW.id::text);
    RETURN NEW;
END
$$;

CREATE TRIGGER campaigns_status_changed
    AFTER UPDATE OF status ON campaigns
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION campaigns_notify_status();

-- The senders alive now: those whose advisory lock is held in this database. The one place
-- the liveness rule is written down.
CREATE VIEW live_senders AS
    SELECT objid::bigint::integer AS id
    FROM pg_locks
    WHERE locktype = 'advisory' AND classid = 7242018::oid AND objsubid = 2 AND granted
      AND database = (SELECT oid FROM pg_database WHERE datname = current_database());
