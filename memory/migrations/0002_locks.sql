-- Forge: who holds each stack's Postgres advisory lock (a failed try-lock names the holder),
-- and the human request to roll back a DONE run (recorded once: a second request is refused).

CREATE TABLE crew_stack_locks (
    stack_id     text PRIMARY KEY,
    lock_key     bigint NOT NULL,
    run_id       text,
    worker_id    text NOT NULL,
    operation    text NOT NULL,
    acquired_at  timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE crew_runs ADD COLUMN rollback_request jsonb;
