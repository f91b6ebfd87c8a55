-- Cheaper rows for the bid journal: in the last minutes every accepted bid writes a `bids`
-- row and, most of the time, an outbid email for the bidder who lost the lead. Measured
-- with pgbench on 50-row batches (see docs/ARCHITECTURE.md, "What a bid costs Postgres"):
-- a bids row cost about 32 µs with its two foreign keys and 15 µs without, and an outbid
-- notification row about 20 µs.

-- 1. `bids` keeps its integrity without per-row foreign-key checks.
--
-- A foreign key check runs a query and takes a row lock on the item and on the bidder for
-- every inserted bid: half the row's cost. Bids are written only by the bid journal, for
-- items whose book it loaded from `items` and for signed-in bidders, so an insert never
-- names a missing row. What a foreign key would still catch is a later DELETE (or id
-- change) of an item or user that has bids; these triggers refuse exactly that, at the
-- rare write that could break the reference instead of at every bid.
ALTER TABLE bids
    DROP CONSTRAINT bids_item_id_fkey,
    DROP CONSTRAINT bids_bidder_id_fkey;

CREATE FUNCTION refuse_orphaning_bids() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.id = OLD.id THEN
        RETURN NEW;
    END IF;
    IF (TG_TABLE_NAME = 'items' AND EXISTS (SELECT 1 FROM bids WHERE item_id = OLD.id))
       OR (TG_TABLE_NAME = 'users' AND EXISTS (SELECT 1 FROM bids WHERE bidder_id = OLD.id)) THEN
        RAISE EXCEPTION '% % has bids and cannot be deleted or renumbered', TG_TABLE_NAME, OLD.id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER items_keep_bids BEFORE DELETE OR UPDATE OF id ON items
    FOR EACH ROW EXECUTE FUNCTION refuse_orphaning_bids();
CREATE TRIGGER users_keep_bids BEFORE DELETE OR UPDATE OF id ON users
    FOR EACH ROW EXECUTE FUNCTION refuse_orphaning_bids();

-- 2. One waiting outbid email per bidder and item.
--
-- A bidder outbid ten times on one lot before the email goes out should get one email with
-- the latest price, not ten. The journal upserts on this index: a second outbid updates the
-- waiting row's payload instead of adding a row (and four index entries). Once the email is
-- sent (status 'sent'), the next outbid queues a new one.
-- Until now every outbid queued its own row, and nothing has sent them yet: fold the waiting
-- ones into the newest per bidder and item first, or the unique index cannot be built.
DELETE FROM notifications n
 USING notifications newer
 WHERE n.type = 'outbid' AND n.status = 'scheduled'
   AND newer.type = 'outbid' AND newer.status = 'scheduled'
   AND newer.user_id = n.user_id
   AND newer.related_entity_id = n.related_entity_id
   AND newer.id > n.id;

CREATE UNIQUE INDEX notifications_waiting_outbid_idx
    ON notifications (user_id, related_entity_id)
    WHERE type = 'outbid' AND status = 'scheduled';
