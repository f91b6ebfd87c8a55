-- A cheaper fixed cost for each commit of the bid journal.
--
-- On an ordinary evening (a few thousand bids a second) most journal commits hold one or two
-- bids, so what a commit costs Postgres regardless of its size decides its latency and most
-- of Postgres's CPU. Measured with pgbench, one bid with its key and an outbid email cost
-- about 300 µs of backend CPU before the commit's fsync, and most of it was per table, not
-- per row (see docs/ARCHITECTURE.md, "What a bid costs Postgres"). Two causes, fixed here
-- for the two tables every bid writes besides `bids`:

-- Changing a column to a domain with a check rewrites the table (every row is checked) under
-- an exclusive lock, at the server's start. `idempotency_keys` grows by a row per keyed bid
-- and is never emptied: however long that takes, the pool's statement timeout must not cut
-- it off half-way (the migration would fail and the server not start).
SET LOCAL statement_timeout = 0;

-- 1. CHECK constraints are re-read from the catalog's text form (parsed) by every statement
--    that inserts into their table: about 50 µs for the three IN lists of `notifications`
--    and 30 µs for the two of `idempotency_keys`. A domain's check is cached per session.
--    The rules are the same; the columns stay text to every query (Postgres describes a
--    domain column by its base type) and text values are assigned to them as before.
CREATE DOMAIN notification_channel AS TEXT
    CHECK (VALUE IN ('email','sms'));
CREATE DOMAIN notification_type AS TEXT
    CHECK (VALUE IN ('registration','outbid','win','settlement','event_reminder','reoffer_announcement','custom'));
CREATE DOMAIN notification_status AS TEXT
    CHECK (VALUE IN ('scheduled','sent','failed'));
CREATE DOMAIN idempotency_scope AS TEXT
    CHECK (VALUE IN ('bid','purchase'));
CREATE DOMAIN idempotency_key AS TEXT
    CHECK (length(VALUE) BETWEEN 1 AND 200);

-- The partial indexes name the columns whose type changes: built again after it, with
-- their predicates written against the new columns.
DROP INDEX notifications_waiting_outbid_idx;
DROP INDEX notifications_due_idx;

ALTER TABLE notifications
    DROP CONSTRAINT notifications_channel_check,
    DROP CONSTRAINT notifications_type_check,
    DROP CONSTRAINT notifications_status_check,
    ALTER COLUMN channel TYPE notification_channel,
    ALTER COLUMN type TYPE notification_type,
    ALTER COLUMN status TYPE notification_status;

ALTER TABLE idempotency_keys
    DROP CONSTRAINT idempotency_keys_scope_check,
    DROP CONSTRAINT idempotency_keys_key_check,
    ALTER COLUMN scope TYPE idempotency_scope,
    ALTER COLUMN key TYPE idempotency_key;

CREATE UNIQUE INDEX notifications_waiting_outbid_idx
    ON notifications (user_id, related_entity_id)
    WHERE type = 'outbid' AND status = 'scheduled';
CREATE INDEX notifications_due_idx ON notifications (scheduled_for) WHERE status = 'scheduled';

-- 2. A foreign key runs a query and locks the user's row for every inserted row. As for
--    `bids` in 0004, the journal only writes rows for signed-in users, so an insert never
--    names a missing user; what the keys still guarded was deleting (or renumbering) a user
--    who has such rows, and the users trigger now refuses that, as the keys did. (Unlike a
--    key, the trigger does not lock the user's row against a journal insert in flight; as in
--    0004 that race needs a user deleted while bidding, and nothing deletes users today.)
ALTER TABLE idempotency_keys DROP CONSTRAINT idempotency_keys_user_id_fkey;
ALTER TABLE notifications DROP CONSTRAINT notifications_user_id_fkey;

-- One guard for every row that names an item or a user without a key: 0004's function,
-- renamed for what it now keeps and widened to the users' keys and notifications. Its two
-- triggers (on items and users) name it by identity and follow the rename.
ALTER FUNCTION refuse_orphaning_bids() RENAME TO refuse_orphaning_rows;
ALTER TRIGGER users_keep_bids ON users RENAME TO users_keep_rows;

CREATE OR REPLACE FUNCTION refuse_orphaning_rows() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    kept TEXT;
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.id = OLD.id THEN
        RETURN NEW;
    END IF;
    IF TG_TABLE_NAME = 'items' THEN
        IF EXISTS (SELECT 1 FROM bids WHERE item_id = OLD.id) THEN
            kept := 'bids';
        END IF;
    ELSIF EXISTS (SELECT 1 FROM bids WHERE bidder_id = OLD.id) THEN
        kept := 'bids';
    ELSIF EXISTS (SELECT 1 FROM idempotency_keys WHERE user_id = OLD.id) THEN
        kept := 'stored answers (idempotency keys)';
    ELSIF EXISTS (SELECT 1 FROM notifications WHERE user_id = OLD.id) THEN
        kept := 'notifications';
    END IF;
    IF kept IS NOT NULL THEN
        RAISE EXCEPTION '% % has % and cannot be deleted or renumbered', TG_TABLE_NAME, OLD.id, kept
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END;
$$;

-- Looking a user's rows up on delete needs an index leading with user_id: the keys' primary
-- key leads with it, and notifications has notifications_user_idx.
