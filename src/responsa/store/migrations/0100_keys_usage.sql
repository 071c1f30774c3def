-- Managed API keys (`responsa keys ...`) and daily usage per key and model.
-- Numbered 0100 so it never collides with the core store's own sequence.
-- Only a SHA-256 of a key is kept; the key is shown once, when created.
CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    tenant TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT,
    requests_per_minute BIGINT,
    tokens_per_minute BIGINT,
    max_concurrent BIGINT,
    token_budget BIGINT
);
CREATE TABLE usage_daily (
    tenant TEXT NOT NULL,
    model TEXT NOT NULL,
    day TEXT NOT NULL,
    key_id TEXT,
    requests BIGINT NOT NULL DEFAULT 0,
    input_tokens BIGINT NOT NULL DEFAULT 0,
    output_tokens BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant, model, day)
);
CREATE INDEX usage_daily_day ON usage_daily (day);
