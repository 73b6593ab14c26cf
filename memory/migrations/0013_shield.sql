-- Shield-Lite (crew/shield.py): advisory feeds polled with conditional GETs, the advisories
-- read from them, and each advisory matched to a deployed stack (once per stack and advisory;
-- resolved when a later poll no longer finds it).

CREATE TABLE crew_shield_feeds (
    feed            text PRIMARY KEY,
    etag            text,
    last_modified   text,
    format          text,
    entries         integer NOT NULL DEFAULT 0,
    polled_at       timestamptz,
    ok_at           timestamptz,
    failures        integer NOT NULL DEFAULT 0,
    last_error      text,
    next_attempt_at timestamptz
);

CREATE TABLE crew_shield_advisories (
    advisory_id text PRIMARY KEY,
    feed        text NOT NULL,
    severity    text NOT NULL,
    advisory    jsonb NOT NULL,
    seen_at     timestamptz NOT NULL
);

CREATE TABLE crew_shield_matches (
    stack_id       text NOT NULL,
    advisory_id    text NOT NULL,
    run_id         text NOT NULL REFERENCES crew_runs (run_id),
    severity       text NOT NULL,
    first_seen     timestamptz NOT NULL,
    match          jsonb NOT NULL,
    slack_channel  text,
    slack_ts       text,
    slack_attempts integer NOT NULL DEFAULT 0,
    slack_error    text,
    slack_next_at  timestamptz,
    -- set when a later poll no longer finds it (the stack was upgraded or is gone)
    resolved_at    timestamptz,
    PRIMARY KEY (stack_id, advisory_id)
);

CREATE INDEX crew_shield_matches_seen_idx ON crew_shield_matches (first_seen DESC);
