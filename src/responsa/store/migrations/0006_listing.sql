-- Lists of a tenant's responses and conversations, newest first
-- (store/listing.py). created_at has whole seconds, so rows created in the
-- same second are ordered by insertion: PostgreSQL's `seq` (a BIGSERIAL),
-- SQLite's rowid (there `seq` stays NULL: SQLite reads the index in
-- created_at order and sorts each second's few rows by rowid).
ALTER TABLE responses ADD COLUMN seq BIGSERIAL;
ALTER TABLE conversations ADD COLUMN seq BIGSERIAL;
CREATE INDEX responses_by_tenant ON responses (tenant, created_at, seq);
CREATE INDEX conversations_by_tenant ON conversations (tenant, created_at, seq);
