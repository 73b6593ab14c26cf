"""The human gate: who may decide (access), how a decision is taken from REST, Slack and the
CLI (actions), the Slack surface (webhook, message, notifier), and the gate's timers (approval
expiry, rollback SLA)."""
