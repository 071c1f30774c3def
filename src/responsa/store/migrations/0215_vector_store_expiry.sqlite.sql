-- When a vector store with expires_after expires (NULL: never), kept beside
-- last_active_at so the sweeper finds expired stores by an index
-- (store/vectors.py: expired_stores) instead of reading every body.
ALTER TABLE vector_stores ADD COLUMN expires_at BIGINT;
UPDATE vector_stores SET expires_at = last_active_at + CAST(json_extract(body, '$.expires_after.days') AS INTEGER) * 86400
    WHERE json_extract(body, '$.expires_after.days') IS NOT NULL;
CREATE INDEX vector_stores_expiry ON vector_stores (expires_at) WHERE expires_at IS NOT NULL;
