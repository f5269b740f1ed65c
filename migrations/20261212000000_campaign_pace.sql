-- One pace for a campaign, however many `send` processes work it, on however many machines: a
-- token bucket per campaign that every sender draws from (`store::pace::draw`). Refills are
-- computed from `refilled_at` and the database's clock, never a machine's, so senders whose
-- clocks disagree still share one rate.
CREATE TABLE campaign_pace (
    campaign_id bigint PRIMARY KEY REFERENCES campaigns (id) ON DELETE CASCADE,
    -- Tokens in the bucket at `refilled_at` (fractions accumulate between draws).
    tokens      double precision NOT NULL CHECK (tokens >= 0),
    refilled_at timestamptz NOT NULL
);

-- The burst each sender was started with: the campaign's burst is the smallest among the live
-- senders that have a rate, as its rate is the lowest of theirs.
ALTER TABLE senders ADD COLUMN burst integer CHECK (burst > 0);
