-- Uploaded files (/v1/files). The row is the FileObject; `storage` names the
-- blob backend that holds the content (files/blobs/): 'disk' (a directory)
-- or 'database' (file_chunks below, 1 MiB a row, for replicas without a
-- shared directory). `seq` orders rows of one second, as in 0006.
CREATE TABLE files (
    tenant TEXT NOT NULL,
    id TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    filename TEXT NOT NULL,
    purpose TEXT NOT NULL,
    bytes BIGINT NOT NULL,
    storage TEXT NOT NULL,
    seq BIGSERIAL
);
CREATE INDEX files_by_tenant ON files (tenant, created_at, seq);
CREATE INDEX files_expiry ON files (expires_at);

CREATE TABLE file_chunks (
    file_id TEXT NOT NULL,
    n INTEGER NOT NULL,
    data BYTEA NOT NULL,
    PRIMARY KEY (file_id, n)
);
