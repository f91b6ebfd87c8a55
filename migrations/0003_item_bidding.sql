-- The live bidding state of an item moves out of `items` into a narrow table of its own.
--
-- The bid journal writes this state with every batch of bids. On `items` each such update
-- recomputed the catalog's full-text `search` column and, the rows being wide, could not be
-- a HOT update, so it rewrote every index entry (two GIN indexes among them): about 3.5x the
-- cost of updating this narrow table, measured with pgbench. This table is derived data (the
-- truth is the `bids` journal, which recovery replays), written in the same statement as
-- the bids it summarises.

CREATE TABLE item_bidding (
    item_id       BIGINT PRIMARY KEY REFERENCES items(id) ON DELETE CASCADE,
    current_price BIGINT CHECK (current_price >= 0),
    bid_count     INTEGER NOT NULL DEFAULT 0 CHECK (bid_count >= 0),
    -- No foreign key: derived from bids (whose bidder_id has one), and a key check per
    -- lead change would cost on the hot path for nothing.
    leader_id     BIGINT,
    last_seq      BIGINT NOT NULL DEFAULT 0,
    closes_at     TIMESTAMPTZ
) WITH (fillfactor = 50); -- room on each page for HOT updates

INSERT INTO item_bidding (item_id, current_price, bid_count, leader_id, last_seq, closes_at)
SELECT id, current_price, bid_count, leader_id, last_seq, closes_at
  FROM items
 WHERE bid_count > 0 OR closes_at IS NOT NULL;

ALTER TABLE items
    DROP COLUMN current_price,
    DROP COLUMN bid_count,
    DROP COLUMN leader_id,
    DROP COLUMN last_seq,
    DROP COLUMN closes_at;
