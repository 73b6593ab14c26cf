-- Revisions of a stack (issue 20): a goal_id is no longer run once. Each new run of a goal
-- (a revised goal, a reconcile, a decommission) is the next revision of its stack; the pair
-- (goal_id, revision) is unique. `base_run_id`/`base_revision` name the applied revision the
-- run plans against (what a failed apply rolls back to); `purpose` says why the run exists;
-- `seed_plan` is the PlanSpec a reconcile re-applies or a decommission destroys (the applied
-- revision's declared configuration, not a new design).

ALTER TABLE crew_runs DROP CONSTRAINT IF EXISTS crew_runs_goal_id_key;
ALTER TABLE crew_runs ADD CONSTRAINT crew_runs_goal_revision_key UNIQUE (goal_id, revision);

ALTER TABLE crew_runs
    ADD COLUMN base_run_id   text,
    ADD COLUMN base_revision integer,
    ADD COLUMN purpose       text NOT NULL DEFAULT 'goal',
    ADD COLUMN seed_plan     jsonb;
