-- Drift checks (crew/drift.py): one row per refresh-only plan of an applied stack. The newest
-- row of a stack is what `GET /v1/stacks/{id}` reports as the last drift check; an accepted
-- drift records who accepted it (the gate log has the event).

CREATE TABLE crew_drift_checks (
    id          bigserial PRIMARY KEY,
    stack_id    text NOT NULL,
    run_id      text NOT NULL REFERENCES crew_runs (run_id),
    checked_at  timestamptz NOT NULL,
    drifted     boolean NOT NULL,
    fingerprint text NOT NULL,
    report      jsonb NOT NULL,
    accepted_by text,
    accepted_at timestamptz
);

CREATE INDEX crew_drift_checks_stack_idx ON crew_drift_checks (stack_id, checked_at DESC);
