-- Reusable prompt templates, versioned: a version row is written once and
-- never updated. The header row's counter allocates version numbers inside
-- the inserting transaction (portable to PostgreSQL, no MAX()+1 race).
-- tenant '' holds the prompts seeded from the server's prompts_dir, which
-- every tenant can read and none can change.
CREATE TABLE prompts (
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    latest_version BIGINT NOT NULL,
    PRIMARY KEY (tenant, id)
);

CREATE TABLE prompt_versions (
    tenant TEXT NOT NULL,
    prompt_id TEXT NOT NULL,
    version BIGINT NOT NULL,
    prompt TEXT NOT NULL,
    PRIMARY KEY (tenant, prompt_id, version),
    FOREIGN KEY (tenant, prompt_id) REFERENCES prompts (tenant, id) ON DELETE CASCADE
);
