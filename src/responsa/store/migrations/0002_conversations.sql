-- Conversations: an ordered list of items that responses read as context
-- and append to. Positions come from the conversation row's own counter,
-- bumped in the appending transaction (the row lock serialises appenders on
-- PostgreSQL, BEGIN IMMEDIATE on SQLite), so concurrent appends never
-- interleave or collide.
CREATE TABLE conversations (
    tenant TEXT NOT NULL,
    id TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL,
    metadata TEXT NOT NULL,
    next_position BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE conversation_items (
    conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    position BIGINT NOT NULL,
    item_id TEXT NOT NULL,
    response_id TEXT,            -- the response that appended it, NULL if added through the API
    item TEXT NOT NULL,
    PRIMARY KEY (conversation_id, position)
);
CREATE INDEX conversation_items_by_id ON conversation_items (conversation_id, item_id);
