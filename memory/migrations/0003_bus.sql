-- The event bus (issue 7): the outbox every OpsEvent is written to (in the transaction that
-- caused it), consumer groups and deliveries of the Postgres bus, the worker registry fed by
-- heartbeats, and the run queue's dispatch mark.

CREATE TABLE crew_events (
    pk          bigserial PRIMARY KEY,
    event_id    text NOT NULL UNIQUE,
    family      text NOT NULL,
    type        text NOT NULL,
    run_id      text,
    at          timestamptz NOT NULL,
    body        jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    -- when the relay forwarded it to Redis/NATS; stays NULL on the Postgres bus
    relayed_at  timestamptz
);

CREATE INDEX crew_events_unrelayed_idx ON crew_events (pk) WHERE relayed_at IS NULL;
CREATE INDEX crew_events_created_idx ON crew_events (created_at);
CREATE INDEX crew_events_run_idx ON crew_events (run_id, pk);

-- Postgres bus: a durable consumer group reads some families; each event of those families
-- gets one delivery row per group when it is written (fan-out), deleted when acknowledged.
CREATE TABLE crew_bus_groups (
    name        text PRIMARY KEY,
    families    text[] NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE crew_bus_deliveries (
    group_name    text NOT NULL REFERENCES crew_bus_groups (name) ON DELETE CASCADE,
    event_pk      bigint NOT NULL REFERENCES crew_events (pk) ON DELETE CASCADE,
    consumer      text,
    locked_until  timestamptz,
    attempts      integer NOT NULL DEFAULT 0,
    PRIMARY KEY (group_name, event_pk)
);

CREATE INDEX crew_bus_deliveries_event_idx ON crew_bus_deliveries (event_pk);

-- Every worker and API process, as its heartbeats last saw it.
CREATE TABLE crew_workers (
    worker_id       text PRIMARY KEY,
    role            text NOT NULL,
    host            text NOT NULL,
    pid             integer NOT NULL,
    version         text NOT NULL,
    started_at      timestamptz NOT NULL,
    last_beat       timestamptz NOT NULL,
    heartbeat_s     double precision NOT NULL,
    runs_in_flight  integer NOT NULL DEFAULT 0,
    dead_at         timestamptz,
    stopped_at      timestamptz
);

CREATE INDEX crew_workers_beat_idx ON crew_workers (last_beat);

-- A `run.ready` for this run is queued on the bus and nobody has claimed it yet.
ALTER TABLE crew_runs ADD COLUMN dispatched_at timestamptz;
CREATE INDEX crew_runs_lease_idx ON crew_runs (lease_owner) WHERE lease_owner IS NOT NULL;
