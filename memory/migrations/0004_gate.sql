-- The gate: Slack messages (one per run, posted at WAIT_FOR_APPROVE and updated as the run
-- moves), Slack requests already used (replay protection), the gate log (refusals, expiries,
-- alerts) and the rollback SLA measured for every rollback.

CREATE TABLE crew_slack_messages (
    run_id          text PRIMARY KEY REFERENCES crew_runs (run_id),
    plan_digest     text,
    channel         text,
    ts              text,
    rendered_seq    integer NOT NULL DEFAULT -1,
    rendered_state  text,
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz,
    last_error      text,
    lease_owner     text,
    lease_until     timestamptz,
    posted_at       timestamptz,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE crew_slack_requests (
    signature   text PRIMARY KEY,
    received_at timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);

CREATE INDEX crew_slack_requests_expiry_idx ON crew_slack_requests (expires_at);

CREATE TABLE crew_gate_log (
    id      bigserial PRIMARY KEY,
    at      timestamptz NOT NULL,
    kind    text NOT NULL,
    run_id  text,
    channel text,
    actor   text,
    action  text,
    detail  text NOT NULL,
    event   jsonb,
    dedup   text UNIQUE
);

CREATE INDEX crew_gate_log_at_idx ON crew_gate_log (at);
CREATE INDEX crew_gate_log_run_idx ON crew_gate_log (run_id, at);

CREATE FUNCTION crew_gate_log_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'crew_gate_log is append-only (% refused)', TG_OP;
END;
$$;

CREATE TRIGGER crew_gate_log_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON crew_gate_log
    FOR EACH STATEMENT EXECUTE FUNCTION crew_gate_log_append_only();

CREATE TABLE crew_rollback_sla (
    run_id      text NOT NULL REFERENCES crew_runs (run_id),
    seq         integer NOT NULL,
    trigger_at  timestamptz NOT NULL,
    started_at  timestamptz NOT NULL,
    finished_at timestamptz NOT NULL,
    begin_s     double precision NOT NULL,
    finish_s    double precision NOT NULL,
    met         boolean NOT NULL,
    measured_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, seq)
);
