-- Live progress of a run's long terraform step (schemas/progress.py StepProgress), written by
-- the worker while terraform runs (throttled: crew/progress.py), and when the run's Slack
-- message last showed it (the notifier updates the message at a bounded rate).

ALTER TABLE crew_runs ADD COLUMN progress jsonb;
ALTER TABLE crew_runs ADD COLUMN progress_at timestamptz;
ALTER TABLE crew_slack_messages ADD COLUMN progress_rendered_at timestamptz;
