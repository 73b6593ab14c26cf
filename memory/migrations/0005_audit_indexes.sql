-- Audit queries (memory/audit.py, memory/audit_reports.py) at a million audit rows.
--
-- A listing is ordered by the key (at, run_id, seq) and paged by keyset, so every filter has
-- an index that starts with the filtered column and continues with the key: the planner
-- reads the matching rows already in order, stops after a page, and a cursor is a range
-- condition on the same index. Checked with EXPLAIN by `python -m bench.audit`.
--
-- Plain CREATE INDEX (migrations run in a transaction): on a large existing table this holds
-- off audit writes while it builds (seconds per index at 1 M rows).

-- No filter, or only a time range: the key itself. Supersedes crew_audit_at_idx.
CREATE INDEX crew_audit_key_idx ON crew_audit (at, run_id, seq);
DROP INDEX IF EXISTS crew_audit_at_idx;

CREATE INDEX crew_audit_actor_idx ON crew_audit (actor, at, run_id, seq);
-- Also the approvals report: actor and from_state ride along for an index-only scan.
CREATE INDEX crew_audit_event_idx ON crew_audit (event, at, run_id, seq)
    INCLUDE (actor, from_state);
-- `state` (to_state) also finds the starts of rollbacks for the rollbacks report.
CREATE INDEX crew_audit_to_state_idx ON crew_audit (to_state, at, run_id, seq);
CREATE INDEX crew_audit_from_state_idx ON crew_audit (from_state, at, run_id, seq);

-- The cost report reads each run's latest ValidationReport: one small entry per validation.
CREATE INDEX crew_audit_validation_idx ON crew_audit (run_id, seq)
    WHERE artifact_type = 'ValidationReport';

-- Runs by final state: an index-only scan per state, optionally within a creation window.
CREATE INDEX crew_runs_state_created_idx ON crew_runs (state, created_at) INCLUDE (updated_at);
