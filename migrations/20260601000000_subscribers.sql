-- Subscribers, their topics, and the consent and change log a data-protection officer audits.
-- Migrations are append-only: change the schema with a new file, never by editing this one.

CREATE TABLE topics (
    slug        text PRIMARY KEY CHECK (slug ~ '^[a-z0-9-]+$'),
    name        text NOT NULL CHECK (name <> ''),
    description text NOT NULL DEFAULT '',
    sort_order  integer NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- The four topics of the sign-up box, in its order.
INSERT INTO topics (slug, name, description, sort_order) VALUES
    ('training', 'Training dates',
     'The latest dates for LSCP training and development opportunities', 10),
    ('protocols', 'Local protocols and guidance',
     'Updates to local protocols and guidance', 20),
    ('reviews', 'Learning from reviews',
     'Learning from reviews and sharing best practice', 30),
    ('events', 'Events and campaigns',
     'Upcoming events, campaigns and national guidance', 40);

CREATE TABLE subscribers (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- As the practitioner gave it; matched through email_normalised (lower-cased by the app).
    email            text NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    email_normalised text NOT NULL UNIQUE CHECK (length(email_normalised) BETWEEN 3 AND 254),
    name             text CHECK (name <> ''),
    organisation     text CHECK (organisation <> ''),
    status           text NOT NULL
                     CHECK (status IN ('pending', 'active', 'unsubscribed', 'bounced', 'blocked')),
    -- Links in messages carry link_id and link_secret (random, not derived from the email);
    -- rotating the secret invalidates every link sent before.
    link_id          bytea NOT NULL UNIQUE CHECK (length(link_id) = 16),
    link_secret      bytea NOT NULL CHECK (length(link_secret) = 32),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    confirmed_at     timestamptz
);

CREATE TABLE subscriber_topics (
    subscriber_id bigint NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    topic         text NOT NULL REFERENCES topics (slug) ON UPDATE CASCADE,
    PRIMARY KEY (subscriber_id, topic)
);
CREATE INDEX subscriber_topics_topic ON subscriber_topics (topic);

-- Tombstones of erased subscribers: an HMAC-SHA256 of the normalised address under the
-- installation's erasure key, so a later import recognises the address without storing it.
CREATE TABLE erasures (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email_hmac bytea NOT NULL UNIQUE CHECK (length(email_hmac) = 32),
    erased_at  timestamptz NOT NULL DEFAULT now()
);

-- One random key per installation for the tombstones' HMAC (see erasures).
CREATE TABLE erasure_key (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    key        bytea NOT NULL CHECK (length(key) = 32),
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Every subscription, confirmation, topic change, unsubscribe, bounce and erasure.
-- After an erasure the entries stay, detached from the person and tied to the tombstone.
CREATE TABLE consent_log (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subscriber_id bigint REFERENCES subscribers (id) ON DELETE SET NULL,
    erasure_id    bigint REFERENCES erasures (id),
    at            timestamptz NOT NULL DEFAULT now(),
    action        text NOT NULL CHECK (action IN ('subscribed', 'confirmed', 'topics_changed',
                      'unsubscribed', 'bounced', 'blocked', 'erased', 'link_rotated')),
    source        text NOT NULL CHECK (source ~ '^(import:.+|web|cli|one-click|bounce)$'),
    -- What changed (statuses, topic slugs); never an address, a name or a token.
    detail        jsonb NOT NULL DEFAULT '{}',
    -- A subscriber can only be deleted by an erasure, which ties their entries to its tombstone.
    CHECK (subscriber_id IS NOT NULL OR erasure_id IS NOT NULL)
);
CREATE INDEX consent_log_subscriber ON consent_log (subscriber_id, id);
CREATE INDEX consent_log_erasure ON consent_log (erasure_id);

-- The log is append-only: an entry is never deleted, and only its link to a person may change
-- (an erasure detaches it).
CREATE FUNCTION consent_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'the consent log is append-only: entries cannot be deleted';
    END IF;
    IF NEW.id <> OLD.id OR NEW.at <> OLD.at OR NEW.action <> OLD.action
       OR NEW.source <> OLD.source OR NEW.detail <> OLD.detail THEN
        RAISE EXCEPTION 'the consent log is append-only: entries cannot be changed';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER consent_log_append_only BEFORE UPDATE OR DELETE ON consent_log
    FOR EACH ROW EXECUTE FUNCTION consent_log_append_only();
