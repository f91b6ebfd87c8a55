-- The notification outbox gets its worker: rows are claimed, sent, retried and finished.
--
-- Two statuses join the three of the spec:
-- - 'sending': claimed by a worker until `lease_until`. A worker that dies mid-send leaves
--   the row here; once the lease has passed another worker takes it up again (at least
--   once: the resend carries the same Message-ID, so a mail client shows it once).
--   Leaving 'scheduled' also takes the row out of `notifications_waiting_outbid_idx`, so
--   the bid journal's upsert never changes the price of a mail already on its way: a newer
--   outbid queues a row of its own, held back by the quiet window.
-- - 'skipped': nothing was sent on purpose, with the reason in `last_error` (the bidder had
--   taken the lead back, bidding had closed, email notices are off).
ALTER DOMAIN notification_status DROP CONSTRAINT notification_status_check;
ALTER DOMAIN notification_status ADD CONSTRAINT notification_status_check
    CHECK (VALUE IN ('scheduled','sending','sent','failed','skipped'));

ALTER TABLE notifications
    -- Until when the worker that claimed the row owns it ('sending' only).
    ADD COLUMN lease_until TIMESTAMPTZ,
    -- The Message-ID every attempt of this notification carries, set at its first claim.
    ADD COLUMN message_id  TEXT,
    -- When its owner marked it read in their list (`POST /api/notifications/read`).
    ADD COLUMN read_at     TIMESTAMPTZ;

-- The optional notices a person turned off (on the account page, by API, or with the
-- unsubscribe link of such an email), whatever the channel. `pref_email` and `pref_sms`
-- stay the channels' switches; what is not optional (a win, an account email) always goes.
ALTER TABLE users ADD COLUMN muted_notifications TEXT[] NOT NULL DEFAULT '{}'
    CHECK (muted_notifications <@ ARRAY['outbid','reoffer_announcement']::TEXT[]);

-- Rows whose worker died, found by the next claim.
CREATE INDEX notifications_lease_idx ON notifications (lease_until) WHERE status = 'sending';

-- The outbid quiet window asks "when did this bidder last get (or start getting) an outbid
-- mail for this item?".
CREATE INDEX notifications_outbid_sent_idx
    ON notifications (user_id, related_entity_id, sent_at)
    WHERE type = 'outbid' AND status IN ('sending', 'sent');
