-- Vector stores (SQLite). The same tables as 0210_vector_stores.postgresql.sql;
-- only the search structures differ: FTS5 (bm25) for keywords here, and
-- sqlite-vec vec0 tables (one per embedding dimension, created when a store
-- of that dimension first gets chunks: store/vectors.py) for vectors.
CREATE TABLE vector_stores (
    tenant TEXT NOT NULL,
    id TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL,
    -- name, description, metadata, expires_after as the API shows them (JSON)
    body TEXT NOT NULL,
    embedding_model TEXT NOT NULL,
    dimensions INTEGER NOT NULL,
    last_active_at BIGINT NOT NULL
);
CREATE INDEX vector_stores_by_tenant ON vector_stores (tenant, created_at);
-- A file in a vector store; the row is also its ingestion job (status
-- in_progress while a replica holds its lease, as for background responses).
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
    PRIMARY KEY (vector_store_id, id)
);
CREATE INDEX vector_store_files_order ON vector_store_files (vector_store_id, created_at);
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
    id INTEGER PRIMARY KEY,
    vector_store_id TEXT NOT NULL,
    file_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    text TEXT NOT NULL
);
CREATE INDEX vector_store_chunks_file ON vector_store_chunks (vector_store_id, file_id, position);
CREATE VIRTUAL TABLE vector_store_chunks_fts USING fts5(
    text, content='vector_store_chunks', content_rowid='id', tokenize='porter unicode61 remove_diacritics 2'
);
