-- The whole data model of the design document, section 4, plus what the product needs
-- beyond it (sessions, email tokens, idempotency keys, paddle numbers, commitments).
-- Money is BIGINT cents everywhere; timestamps are timestamptz.

-- ---------------------------------------------------------------------------------------
-- Users, roles and profiles
-- ---------------------------------------------------------------------------------------

-- Paddle numbers are what a bidder is known by in public (never their name or email).
CREATE SEQUENCE paddle_numbers START 101;

CREATE TABLE users (
    id                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email             TEXT NOT NULL CHECK (length(email) BETWEEN 3 AND 254 AND email = lower(email)),
    name              TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    phone             TEXT CHECK (length(phone) <= 40),
    address           TEXT CHECK (length(address) <= 500),
    household         TEXT CHECK (length(household) <= 200),
    -- A user may hold several roles; 'guest' is the absence of an account, never stored.
    roles             TEXT[] NOT NULL DEFAULT '{bidder}'
                      CHECK (roles <@ ARRAY['bidder','donor','manager','admin','finance']::TEXT[]),
    pref_email        BOOLEAN NOT NULL DEFAULT TRUE,
    pref_sms          BOOLEAN NOT NULL DEFAULT FALSE,
    password_hash     TEXT NOT NULL,
    email_verified_at TIMESTAMPTZ,
    paddle_number     INTEGER NOT NULL UNIQUE DEFAULT nextval('paddle_numbers'),
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email_key ON users (email);
CREATE INDEX users_name_idx ON users (lower(name));

CREATE TABLE donor_profiles (
    user_id             BIGINT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    bio                 TEXT CHECK (length(bio) <= 4000),
    contact_preferences TEXT CHECK (length(contact_preferences) <= 1000)
);

-- One-time tokens sent by email (verification, password reset). Only a SHA-256 of the
-- token is stored, so a database dump does not let anyone verify or reset an account.
CREATE TABLE email_tokens (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id     BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    purpose     TEXT NOT NULL CHECK (purpose IN ('verify','reset')),
    token_hash  BYTEA NOT NULL UNIQUE,
    expires_at  TIMESTAMPTZ NOT NULL,
    used_at     TIMESTAMPTZ,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX email_tokens_user_idx ON email_tokens (user_id, purpose);

-- Server-side sessions (tower-sessions' Postgres store uses exactly this table).
CREATE SCHEMA IF NOT EXISTS tower_sessions;
CREATE TABLE IF NOT EXISTS tower_sessions.session (
    id          TEXT PRIMARY KEY NOT NULL,
    data        BYTEA NOT NULL,
    expiry_date TIMESTAMPTZ NOT NULL
);

-- ---------------------------------------------------------------------------------------
-- Auctions and catalog
-- ---------------------------------------------------------------------------------------

CREATE TABLE auctions (
    id                   BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    year                 INTEGER NOT NULL UNIQUE CHECK (year BETWEEN 2000 AND 2200),
    name                 TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    registration_open_at TIMESTAMPTZ NOT NULL,
    catalog_publish_at   TIMESTAMPTZ NOT NULL,
    bidding_open_at      TIMESTAMPTZ NOT NULL,
    bidding_close_at     TIMESTAMPTZ NOT NULL,
    reoffer_open_at      TIMESTAMPTZ NOT NULL,
    reoffer_close_at     TIMESTAMPTZ NOT NULL,
    settlement_open_at   TIMESTAMPTZ NOT NULL,
    -- Anti-sniping: a bid in the last soft_close_seconds moves the item's close to
    -- now + soft_close_seconds, never past hard_close_at (the auction's absolute deadline).
    soft_close_seconds   INTEGER NOT NULL DEFAULT 120 CHECK (soft_close_seconds BETWEEN 0 AND 3600),
    hard_close_at        TIMESTAMPTZ,
    -- The state follows the calendar; it is persisted whenever it changes so that reports
    -- and other nodes see it. A manager may pin it (state_override) until they release it.
    state                TEXT NOT NULL DEFAULT 'draft'
                         CHECK (state IN ('draft','registration','catalog','bidding','paused','reoffer','closed','settlement')),
    state_override       TEXT
                         CHECK (state_override IN ('draft','registration','catalog','bidding','paused','reoffer','closed','settlement')),
    created_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK (bidding_open_at < bidding_close_at),
    CHECK (reoffer_open_at >= bidding_close_at),
    CHECK (reoffer_close_at > reoffer_open_at),
    CHECK (registration_open_at <= catalog_publish_at),
    CHECK (catalog_publish_at <= bidding_open_at),
    CHECK (settlement_open_at >= reoffer_close_at),
    CHECK (hard_close_at IS NULL OR (hard_close_at >= bidding_close_at AND hard_close_at <= reoffer_open_at))
);

CREATE TABLE categories (
    id         BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 100),
    slug       TEXT NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$' AND length(slug) <= 100),
    active     BOOLEAN NOT NULL DEFAULT TRUE,
    sort_order INTEGER NOT NULL DEFAULT 0
);
INSERT INTO categories (id, name, slug, sort_order) VALUES
    (1, 'Hosted Events', 'hosted-events', 1),
    (2, 'Experiences',   'experiences',   2),
    (3, 'Goods',         'goods',         3),
    (4, 'Services',      'services',      4);
SELECT setval(pg_get_serial_sequence('categories', 'id'), 4);

CREATE TABLE items (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    auction_id       BIGINT NOT NULL REFERENCES auctions(id),
    donor_id         BIGINT NOT NULL REFERENCES users(id),
    type             TEXT NOT NULL CHECK (type IN ('competitive','fixed_price_event','fixed_price_item','service')),
    title            TEXT NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    description      TEXT NOT NULL DEFAULT '' CHECK (length(description) <= 10000),
    donor_notes      TEXT CHECK (length(donor_notes) <= 4000),
    category_id      BIGINT NOT NULL REFERENCES categories(id),
    tags             TEXT[] NOT NULL DEFAULT '{}',
    restrictions     TEXT CHECK (length(restrictions) <= 4000),
    opening_min_bid  BIGINT NOT NULL CHECK (opening_min_bid >= 0),
    bid_increment    BIGINT CHECK (bid_increment > 0),
    buy_now_price    BIGINT CHECK (buy_now_price >= 0),
    fair_market_value BIGINT CHECK (fair_market_value >= 0),
    quantity_total   INTEGER NOT NULL DEFAULT 1 CHECK (quantity_total >= 1),
    quantity_sold    INTEGER NOT NULL DEFAULT 0 CHECK (quantity_sold >= 0),
    -- 'submitted' is the review queue between the spec's draft and approved.
    status           TEXT NOT NULL DEFAULT 'draft'
                     CHECK (status IN ('draft','submitted','approved','published','closed')),
    review_note      TEXT CHECK (length(review_note) <= 4000),
    featured         BOOLEAN NOT NULL DEFAULT FALSE,
    -- Live bidding state, owned by the bid engine and written through with each bid.
    closes_at        TIMESTAMPTZ,
    current_price    BIGINT CHECK (current_price >= 0),
    bid_count        INTEGER NOT NULL DEFAULT 0 CHECK (bid_count >= 0),
    leader_id        BIGINT REFERENCES users(id),
    last_seq         BIGINT NOT NULL DEFAULT 0,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- quantity_remaining = quantity_total - quantity_sold, never negative: no oversell.
    CHECK (quantity_sold <= quantity_total),
    CHECK (type = 'competitive' OR bid_increment IS NULL)
);
CREATE INDEX items_auction_idx ON items (auction_id, status);
CREATE INDEX items_donor_idx ON items (donor_id);

CREATE TABLE item_images (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    item_id    BIGINT NOT NULL REFERENCES items(id) ON DELETE CASCADE,
    file_name  TEXT NOT NULL,
    thumb_name TEXT NOT NULL,
    alt_text   TEXT NOT NULL CHECK (length(alt_text) BETWEEN 1 AND 300),
    width      INTEGER NOT NULL CHECK (width > 0),
    height     INTEGER NOT NULL CHECK (height > 0),
    position   INTEGER NOT NULL DEFAULT 0,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX item_images_item_idx ON item_images (item_id, position);

CREATE TABLE item_reoffer_settings (
    id                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    item_id           BIGINT NOT NULL UNIQUE REFERENCES items(id) ON DELETE CASCADE,
    participate       BOOLEAN NOT NULL DEFAULT TRUE,
    price             BIGINT CHECK (price >= 0),
    allow_below_min   BOOLEAN NOT NULL DEFAULT TRUE,
    quantity_override INTEGER CHECK (quantity_override >= 0),
    notes             TEXT CHECK (length(notes) <= 2000)
);

CREATE TABLE events (
    id                  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    item_id             BIGINT NOT NULL UNIQUE REFERENCES items(id) ON DELETE CASCADE,
    datetime_start      TIMESTAMPTZ NOT NULL,
    datetime_end        TIMESTAMPTZ NOT NULL,
    location_label      TEXT CHECK (length(location_label) <= 200),
    address_line1       TEXT CHECK (length(address_line1) <= 200),
    address_line2       TEXT CHECK (length(address_line2) <= 200),
    city                TEXT CHECK (length(city) <= 100),
    state               TEXT CHECK (length(state) <= 100),
    postal_code         TEXT CHECK (length(postal_code) <= 20),
    address_privacy     TEXT NOT NULL DEFAULT 'show_city_only'
                        CHECK (address_privacy IN ('hide_all','show_city_only','show_full_to_attendees')),
    capacity            INTEGER NOT NULL CHECK (capacity >= 1),
    accessibility_notes TEXT CHECK (length(accessibility_notes) <= 2000),
    age_restrictions    TEXT CHECK (length(age_restrictions) <= 500),
    dietary_notes       TEXT CHECK (length(dietary_notes) <= 2000),
    host_notes          TEXT CHECK (length(host_notes) <= 4000),
    CHECK (datetime_end > datetime_start)
);

-- ---------------------------------------------------------------------------------------
-- Bidding, signups, winners, commitments
-- ---------------------------------------------------------------------------------------

CREATE TABLE bids (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    item_id          BIGINT NOT NULL REFERENCES items(id),
    bidder_id        BIGINT NOT NULL REFERENCES users(id),
    amount           BIGINT NOT NULL CHECK (amount >= 0),
    max_proxy_amount BIGINT CHECK (max_proxy_amount >= amount),
    -- Per-item sequence number of accepted bids: gap-free, strictly increasing.
    seq              BIGINT NOT NULL CHECK (seq >= 1),
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (item_id, seq)
);
CREATE INDEX bids_bidder_idx ON bids (bidder_id, item_id);

CREATE TABLE signups (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    item_id         BIGINT REFERENCES items(id),
    event_id        BIGINT REFERENCES events(id),
    user_id         BIGINT NOT NULL REFERENCES users(id),
    quantity        INTEGER NOT NULL CHECK (quantity >= 1),
    price_at_signup BIGINT NOT NULL CHECK (price_at_signup >= 0),
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    status          TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active','waitlisted','canceled')),
    CHECK ((item_id IS NULL) <> (event_id IS NULL))
);
CREATE INDEX signups_user_idx ON signups (user_id);

CREATE TABLE winners (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    item_id       BIGINT NOT NULL REFERENCES items(id),
    user_id       BIGINT NOT NULL REFERENCES users(id),
    amount        BIGINT NOT NULL CHECK (amount >= 0),
    quantity      INTEGER NOT NULL DEFAULT 1 CHECK (quantity >= 1),
    determined_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX winners_item_idx ON winners (item_id);

-- A commitment is what a bidder owes: a win, a reoffer purchase or a fixed-price signup.
CREATE TABLE commitments (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    auction_id  BIGINT NOT NULL REFERENCES auctions(id),
    item_id     BIGINT NOT NULL REFERENCES items(id),
    user_id     BIGINT NOT NULL REFERENCES users(id),
    source      TEXT NOT NULL CHECK (source IN ('win','reoffer','fixed_price')),
    quantity    INTEGER NOT NULL CHECK (quantity >= 1),
    price_each  BIGINT NOT NULL CHECK (price_each >= 0),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX commitments_user_idx ON commitments (user_id, auction_id);

CREATE TABLE attendance (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id   BIGINT NOT NULL REFERENCES events(id) ON DELETE CASCADE,
    user_id    BIGINT NOT NULL REFERENCES users(id),
    status     TEXT NOT NULL CHECK (status IN ('confirmed','waitlisted','canceled','attended','no_show')),
    rsvp_notes TEXT CHECK (length(rsvp_notes) <= 2000),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (event_id, user_id)
);

-- Idempotency keys of bids and purchases, scoped per user. The original response is
-- stored verbatim so that a retry gets it back byte for byte.
CREATE TABLE idempotency_keys (
    user_id         BIGINT NOT NULL REFERENCES users(id),
    scope           TEXT NOT NULL CHECK (scope IN ('bid','purchase')),
    key             TEXT NOT NULL CHECK (length(key) BETWEEN 1 AND 200),
    request_hash    BYTEA NOT NULL,
    response_status SMALLINT NOT NULL,
    response_body   TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, scope, key)
);

-- ---------------------------------------------------------------------------------------
-- Notifications, payments, receipts, audit
-- ---------------------------------------------------------------------------------------

-- The notification outbox: rows are written in the same transaction as what caused them
-- and delivered afterwards, so an email is never sent for something that did not commit.
CREATE TABLE notifications (
    id                  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id             BIGINT NOT NULL REFERENCES users(id),
    channel             TEXT NOT NULL CHECK (channel IN ('email','sms')),
    type                TEXT NOT NULL CHECK (type IN ('registration','outbid','win','settlement','event_reminder','reoffer_announcement','custom')),
    template_key        TEXT NOT NULL,
    payload             JSONB NOT NULL DEFAULT '{}',
    scheduled_for       TIMESTAMPTZ NOT NULL DEFAULT now(),
    sent_at             TIMESTAMPTZ,
    status              TEXT NOT NULL DEFAULT 'scheduled' CHECK (status IN ('scheduled','sent','failed')),
    attempts            INTEGER NOT NULL DEFAULT 0,
    last_error          TEXT,
    related_entity_type TEXT,
    related_entity_id   BIGINT,
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX notifications_due_idx ON notifications (scheduled_for) WHERE status = 'scheduled';
CREATE INDEX notifications_user_idx ON notifications (user_id);

CREATE TABLE payments (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id      BIGINT NOT NULL REFERENCES users(id),
    method       TEXT NOT NULL CHECK (method IN ('offline','online')),
    amount       BIGINT NOT NULL CHECK (amount > 0),
    currency     CHAR(3) NOT NULL DEFAULT 'USD' CHECK (currency ~ '^[A-Z]{3}$'),
    status       TEXT NOT NULL CHECK (status IN ('pledged','received','failed','refunded')),
    external_ref TEXT UNIQUE,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    settled_at   TIMESTAMPTZ
);
CREATE INDEX payments_user_idx ON payments (user_id);

CREATE TABLE receipts (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id         BIGINT NOT NULL REFERENCES users(id),
    period          TEXT NOT NULL CHECK (length(period) BETWEEN 1 AND 20),
    total_amount    BIGINT NOT NULL CHECK (total_amount >= 0),
    issued_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    delivery_method TEXT NOT NULL CHECK (delivery_method IN ('email','print')),
    UNIQUE (user_id, period)
);

CREATE TABLE audit_log (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- NULL actor: the system itself (scheduler, calendar flips).
    actor_id    BIGINT REFERENCES users(id),
    action      TEXT NOT NULL,
    entity_type TEXT NOT NULL,
    entity_id   BIGINT,
    before      JSONB,
    after       JSONB,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_entity_idx ON audit_log (entity_type, entity_id);
