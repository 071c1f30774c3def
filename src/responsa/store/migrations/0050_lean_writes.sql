-- Fewer index pages written per response (issue 16): an index entry costs
-- a b-tree page in the WAL at every commit, so only what a query needs.
-- The idempotency index only holds rows that have a key (most have none);
-- one partial index holds only the open rows (queued / in progress: few at
-- any time) for the sweeper, lease renewal and the health counts, replacing
-- responses_status and responses_lease, which every response entered.
-- Each query names the index's condition (`status IN (...)`, or
-- `idempotency_key = ?`, which implies it), so both databases use them.
DROP INDEX responses_idempotency;
CREATE UNIQUE INDEX responses_idempotency ON responses (tenant, idempotency_key) WHERE idempotency_key IS NOT NULL;
DROP INDEX responses_status;
DROP INDEX responses_lease;
CREATE INDEX responses_open ON responses (lease_expires_at) WHERE status IN ('queued', 'in_progress');
