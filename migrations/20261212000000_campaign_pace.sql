-- One pace for a campaign, however many `send` processes work it, on however many machines:
-- every sender books each message's slot from one row per campaign (`store::pace::draw`), a
-- token bucket kept as the time its next slot is due (GCRA, as governor does in memory). Times
-- are the database's clock, never a machine's, so senders whose clocks disagree still share
-- one rate.
CREATE TABLE campaign_pace (
    campaign_id bigint PRIMARY KEY REFERENCES campaigns (id) ON DELETE CASCADE,
    -- The earliest time the next message may go; up to (burst - 1) periods in the past when
    -- the bucket is full.
    next_at     timestamptz NOT NULL
);

-- The burst each sender was started with: the campaign's burst is the smallest among the live
-- senders that have a rate, as its rate is the lowest of theirs.
ALTER TABLE senders ADD COLUMN burst integer CHECK (burst > 0);
