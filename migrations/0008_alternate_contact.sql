-- How someone for whom email is hard wants to hear from the church instead (spec 3.2,
-- accessibility: "support for alternate contact preferences"). Staff see everyone who chose
-- a phone call or a printed letter, with what the system has told them by email, and act
-- on it (`/manage/contacts`).
ALTER TABLE users
    ADD COLUMN alternate_contact TEXT NOT NULL DEFAULT 'none'
        CHECK (alternate_contact IN ('none', 'phone_call', 'printed_mail'));
CREATE INDEX users_alternate_contact_idx ON users (alternate_contact) WHERE alternate_contact <> 'none';
