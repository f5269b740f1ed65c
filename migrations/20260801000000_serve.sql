-- The public site (lscp-mail serve): its form-signing key, and the double opt-in of sign-ups.
-- Migrations are append-only: change the schema with a new file, never by editing this one.

-- One random key per installation for the site's form (CSRF) tokens. Kept here rather than in
-- lscp-mail.toml so every server process shares it and it never appears in a config file.
CREATE TABLE web_key (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    key        bytea NOT NULL CHECK (length(key) = 32),
    created_at timestamptz NOT NULL DEFAULT now()
);

-- A sign-up awaiting its confirmation link. Only a SHA-256 of the link's random token is kept,
-- so the table's contents cannot confirm anyone. The topics chosen on the form apply when
-- the link is used; an erasure takes the row with the subscriber.
CREATE TABLE signup_confirmations (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subscriber_id bigint NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    token_hash    bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    topics        text[] NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    used_at       timestamptz,
    CHECK (expires_at > created_at)
);
CREATE INDEX signup_confirmations_subscriber ON signup_confirmations (subscriber_id);
