-- Responses and their items. Payloads are JSON text so the same schema
-- serves SQLite and PostgreSQL.
CREATE TABLE responses (
    tenant TEXT NOT NULL,
    id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    previous_response_id TEXT,
    conversation_id TEXT,
    background BOOLEAN NOT NULL DEFAULT FALSE,
    idempotency_key TEXT,
    request TEXT NOT NULL,
    response TEXT NOT NULL,
    lease_owner TEXT,
    lease_expires_at DOUBLE PRECISION
);
CREATE UNIQUE INDEX responses_idempotency ON responses (tenant, idempotency_key);
CREATE INDEX responses_status ON responses (status);

CREATE TABLE items (
    response_id TEXT NOT NULL REFERENCES responses (id) ON DELETE CASCADE,
    tenant TEXT NOT NULL,
    role TEXT NOT NULL,          -- 'input' | 'output'
    position INTEGER NOT NULL,
    id TEXT NOT NULL,
    item TEXT NOT NULL,
    PRIMARY KEY (response_id, role, position)
);
CREATE INDEX items_by_id ON items (tenant, id);
