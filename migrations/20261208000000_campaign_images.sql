-- An issue's local images as the email links to them (resized, metadata stripped), stored with
-- its campaign so that `serve` on any machine needs only the database. A name is a hash of what
-- it holds: the same name is never stored with other bytes, and is served as immutable.
CREATE TABLE campaign_images (
    campaign_id   bigint NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    name          text NOT NULL CHECK (name ~ '^[a-z0-9-]+\.(png|jpg|gif)$'),
    content_type  text NOT NULL CHECK (content_type IN ('image/png', 'image/jpeg', 'image/gif')),
    bytes         bytea NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (campaign_id, name)
);
