-- A run that ends FAILED (its rollback failed) pages the approvers' Slack channel with a new
-- message (a notification, unlike the gate message's silent update): posted once per failure.
ALTER TABLE crew_slack_messages
    ADD COLUMN paged_seq integer,
    ADD COLUMN page_ts   text;
