-- Events of background responses, written as they are produced, so a
-- stream can be resumed (starting_after=N) on any replica, even after the
-- replica that ran the response died.
CREATE TABLE response_events (
    response_id TEXT NOT NULL REFERENCES responses (id) ON DELETE CASCADE,
    sequence_number BIGINT NOT NULL,
    event TEXT NOT NULL,
    PRIMARY KEY (response_id, sequence_number)
);
-- The sweeper's query: active background jobs whose lease ran out.
CREATE INDEX responses_lease ON responses (status, lease_expires_at);
