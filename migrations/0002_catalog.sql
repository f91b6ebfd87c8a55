-- The catalog: full-text search over items, and the indexes the catalog's filters use.

-- array_to_string is only STABLE (element output functions could in theory change), which
-- a generated column refuses. For text[] the output is plainly the text itself, so this
-- wrapper is truly immutable.
CREATE FUNCTION catalog_tags_text(tags TEXT[]) RETURNS TEXT
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT array_to_string(tags, ' ') $$;

-- Weighted document for ranking: the title matters most (A), then tags (B), then the
-- description and donor notes (C). English stemming, so "quilts" finds "quilt".
ALTER TABLE items ADD COLUMN search tsvector GENERATED ALWAYS AS (
    setweight(to_tsvector('english', title), 'A') ||
    setweight(to_tsvector('english', catalog_tags_text(tags)), 'B') ||
    setweight(to_tsvector('english', description || ' ' || coalesce(donor_notes, '')), 'C')
) STORED;

CREATE INDEX items_search_idx ON items USING GIN (search);
CREATE INDEX items_tags_idx ON items USING GIN (tags);
CREATE INDEX items_category_idx ON items (category_id);
-- The public catalog is "published items of this auction"; featured ones go on the home page.
CREATE INDEX items_featured_idx ON items (auction_id) WHERE featured AND status = 'published';
-- Tags are short lowercase words (the API normalises them; this keeps other writers honest).
ALTER TABLE items ADD CONSTRAINT items_tags_shape
    CHECK (cardinality(tags) <= 12 AND catalog_tags_text(tags) = lower(catalog_tags_text(tags)));

-- "Is this viewer an attendee of this item?" (address privacy) looks these up per request.
CREATE INDEX catalog_attendance_user_idx ON attendance (user_id, event_id);
CREATE INDEX catalog_signups_item_user_idx ON signups (item_id, user_id) WHERE item_id IS NOT NULL;
CREATE INDEX catalog_commitments_item_user_idx ON commitments (item_id, user_id);
