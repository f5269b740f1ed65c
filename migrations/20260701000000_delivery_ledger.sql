-- The delivery ledger: one campaign per issue, one delivery per recipient. A delivery is
-- marked `sent` only after the mail server accepted it; a claim (`sending`) carries a lease so
-- that a crashed sender's claims return to the queue, and nothing is lost or sent twice except
-- what was in flight at the crash.

CREATE TABLE campaigns (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    issue_id      text NOT NULL UNIQUE CHECK (issue_id ~ '^[0-9]{4}-[0-9]{2}$'),
    subject       text NOT NULL,
    -- SHA-256 of the issue's files when sending began: a changed issue is not sent on silently.
    content_hash  text NOT NULL CHECK (length(content_hash) = 64),
    -- The topics the issue's sections carry, frozen with the audience.
    topics        text[] NOT NULL,
    status        text NOT NULL DEFAULT 'sending'
                  CHECK (status IN ('sending', 'paused', 'finished', 'cancelled')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz
);

CREATE TABLE deliveries (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    campaign_id     bigint NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    -- NULL once the subscriber is erased; the record of the delivery stays.
    subscriber_id   bigint REFERENCES subscribers (id) ON DELETE SET NULL,
    -- The reader's topics that the issue carries, frozen at enqueue: picks the variant.
    topics          text[] NOT NULL,
    status          text NOT NULL
                    CHECK (status IN ('queued', 'sending', 'sent', 'failed', 'skipped')),
    attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    -- Set while `sending`: who claimed it and until when the claim holds.
    claimed_by      text,
    lease_until     timestamptz,
    last_reply      text,
    message_id      text,
    sent_at         timestamptz,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (campaign_id, subscriber_id),
    CHECK ((status = 'sending') = (lease_until IS NOT NULL AND claimed_by IS NOT NULL)),
    CHECK ((status = 'sent') = (sent_at IS NOT NULL))
);

-- What workers look for: due queued rows and expired claims, in id order.
CREATE INDEX deliveries_due ON deliveries (campaign_id, id)
    WHERE status IN ('queued', 'sending');
-- The daily cap counts what was sent since midnight, across campaigns.
CREATE INDEX deliveries_sent_at ON deliveries (sent_at) WHERE sent_at IS NOT NULL;
