-- Auction night to the end: items close with their winners, and the reoffer phase sells
-- what is left. The bid engine decides both (one shard per item, in memory) and writes them
-- through its journal; these constraints make "exactly once" the database's rule too, so a
-- retry after a lost answer or a restart in the middle of a close can never make a second
-- winner or sell a unit twice.

-- When an item's bidding close was recorded (with its winners, in the same statement). NULL:
-- bidding has not closed yet. The close is written only where this is still NULL: the
-- guard that makes it happen once.
ALTER TABLE item_bidding ADD COLUMN closed_at TIMESTAMPTZ;

-- One award per bidder and item (an item of several units goes to distinct bidders).
CREATE UNIQUE INDEX winners_item_user_key ON winners (item_id, user_id);

-- A win is owed once; reoffer purchases may repeat (two buys of one unit each).
CREATE UNIQUE INDEX commitments_win_once ON commitments (item_id, user_id) WHERE source = 'win';

-- One "you won" email per winner and item, one reoffer announcement per bidder and auction.
CREATE UNIQUE INDEX notifications_win_once
    ON notifications (user_id, related_entity_id)
    WHERE type = 'win';
CREATE UNIQUE INDEX notifications_reoffer_once
    ON notifications (user_id, related_entity_id)
    WHERE type = 'reoffer_announcement';

-- What the reoffer listing and the engine's stock read per item.
CREATE INDEX commitments_item_idx ON commitments (item_id, source);
