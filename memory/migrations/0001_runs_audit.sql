-- Runs (one per LangGraph thread) and the append-only audit log.

CREATE TABLE crew_runs (
    run_id            text PRIMARY KEY,
    goal_id           text NOT NULL UNIQUE,
    revision          integer NOT NULL DEFAULT 1,
    title             text NOT NULL,
    requested_by      text,
    goal              jsonb NOT NULL,
    state             text NOT NULL,
    last_seq          integer NOT NULL DEFAULT 0,
    summary           jsonb NOT NULL DEFAULT '{}'::jsonb,
    decision          jsonb,
    lease_owner       text,
    lease_until       timestamptz,
    apply_started_at  timestamptz,
    checkpoints_pruned_at timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX crew_runs_created_idx ON crew_runs (created_at DESC, run_id DESC);
CREATE INDEX crew_runs_state_idx ON crew_runs (state, updated_at);

CREATE TABLE crew_audit (
    run_id        text NOT NULL REFERENCES crew_runs (run_id),
    seq           integer NOT NULL,
    at            timestamptz NOT NULL,
    actor         text NOT NULL,
    event         text NOT NULL,
    from_state    text,
    to_state      text NOT NULL,
    artifact_type text,
    artifact      jsonb,
    note          text,
    recorded_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, seq)
);

CREATE INDEX crew_audit_at_idx ON crew_audit (at);

CREATE FUNCTION crew_audit_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'crew_audit is append-only (% refused)', TG_OP;
END;
$$;

CREATE TRIGGER crew_audit_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON crew_audit
    FOR EACH STATEMENT EXECUTE FUNCTION crew_audit_append_only();

-- Worker bookkeeping for unexpected errors: back off instead of spinning on a broken run.
ALTER TABLE crew_runs ADD COLUMN failures integer NOT NULL DEFAULT 0;
ALTER TABLE crew_runs ADD COLUMN last_error text;
ALTER TABLE crew_runs ADD COLUMN not_before timestamptz;
