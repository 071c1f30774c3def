-- Secrets the server generates for itself (e.g. the key that signs
-- compaction items), shared by every replica of one database.
CREATE TABLE server_secrets (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
