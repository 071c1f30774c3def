-- Vector stores (PostgreSQL). The same tables as 0210_vector_stores.sqlite.sql;
-- the search structures: a generated tsvector (english) with a GIN index for
-- keywords (ts_rank), and a pgvector column for vectors (cosine distance,
-- exact). The extension must be available (scripts/install-pgvector.sh).
CREATE EXTENSION IF NOT EXISTS vector;
CREATE TABLE vector_stores (
    tenant TEXT NOT NULL,
    id TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL,
    body TEXT NOT NULL,
    embedding_model TEXT NOT NULL,
    dimensions INTEGER NOT NULL,
    last_active_at BIGINT NOT NULL,
    seq BIGSERIAL
);
CREATE INDEX vector_stores_by_tenant ON vector_stores (tenant, created_at, seq);
CREATE TABLE vector_store_files (
    tenant TEXT NOT NULL,
    vector_store_id TEXT NOT NULL,
    id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    status TEXT NOT NULL,
    batch_id TEXT,
    filename TEXT NOT NULL,
    attributes TEXT NOT NULL,
    chunking TEXT NOT NULL,
    usage_bytes BIGINT NOT NULL DEFAULT 0,
    last_error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_expires_at DOUBLE PRECISION,
    seq BIGSERIAL,
    PRIMARY KEY (vector_store_id, id)
);
CREATE INDEX vector_store_files_order ON vector_store_files (vector_store_id, created_at, seq);
CREATE INDEX vector_store_files_lease ON vector_store_files (status, lease_expires_at);
CREATE INDEX vector_store_files_batch ON vector_store_files (batch_id);
CREATE TABLE vector_store_file_batches (
    tenant TEXT NOT NULL,
    id TEXT PRIMARY KEY,
    vector_store_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    cancelled BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE TABLE vector_store_chunks (
    id BIGSERIAL PRIMARY KEY,
    vector_store_id TEXT NOT NULL,
    file_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    text TEXT NOT NULL,
    embedding vector NOT NULL,
    tsv tsvector GENERATED ALWAYS AS (to_tsvector('english', text)) STORED
);
CREATE INDEX vector_store_chunks_file ON vector_store_chunks (vector_store_id, file_id, position);
CREATE INDEX vector_store_chunks_tsv ON vector_store_chunks USING gin (tsv);
