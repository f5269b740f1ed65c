-- What comes back after the relay accepted a message (lscp-mail bounces): delivery status
-- notifications, complaints, emailed unsubscribes. Migrations are append-only.

-- A delivery stays `sent` (the relay took it); a report later says what became of it.
ALTER TABLE deliveries
    ADD COLUMN bounce            text CHECK (bounce IN ('hard', 'soft')),
    ADD COLUMN bounce_status     text,
    ADD COLUMN bounce_diagnostic text,
    ADD COLUMN bounced_at        timestamptz,
    ADD COLUMN complained_at     timestamptz;

-- Reports are matched to a delivery by its Message-ID (the VERP tag is its random part).
CREATE INDEX deliveries_message_id ON deliveries (message_id) WHERE message_id IS NOT NULL;

-- Every report that took effect, once: the key is a SHA-256 of the report's Message-ID and what
-- it is about (else of its bytes), so the same report read twice, from two sources or after a
-- crash, is found.
-- Never an address: the diagnostic, which often quotes one, stays on the delivery alone.
CREATE TABLE bounce_reports (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    report_key    bytea NOT NULL UNIQUE CHECK (length(report_key) = 32),
    kind          text NOT NULL CHECK (kind IN ('hard', 'soft', 'complaint', 'unsubscribe')),
    delivery_id   bigint REFERENCES deliveries (id) ON DELETE SET NULL,
    campaign_id   bigint REFERENCES campaigns (id) ON DELETE SET NULL,
    subscriber_id bigint REFERENCES subscribers (id) ON DELETE SET NULL,
    status_code   text,
    reported_at   timestamptz NOT NULL DEFAULT now(),
    read_at       timestamptz NOT NULL DEFAULT now()
);
-- Soft bounces are counted per reader over a window of days.
CREATE INDEX bounce_reports_subscriber ON bounce_reports (subscriber_id, kind, reported_at);
CREATE INDEX bounce_reports_campaign ON bounce_reports (campaign_id, kind);

-- New sources of change: a complaint (ARF), an emailed unsubscribe; and an administrator
-- bringing back a bounced reader.
ALTER TABLE consent_log DROP CONSTRAINT consent_log_source_check;
ALTER TABLE consent_log ADD CONSTRAINT consent_log_source_check
    CHECK (source ~ '^(import:.+|web|cli|one-click|bounce|complaint|email)$');
ALTER TABLE consent_log DROP CONSTRAINT consent_log_action_check;
ALTER TABLE consent_log ADD CONSTRAINT consent_log_action_check
    CHECK (action IN ('subscribed', 'confirmed', 'topics_changed', 'unsubscribed', 'bounced',
                      'blocked', 'erased', 'link_rotated', 'reactivated'));
