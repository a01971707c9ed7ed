-- The delivery ledger: one row per (alert, phase, channel), written PENDING before the provider
-- is called and settled afterwards, so that a crash in between is resolved by looking the
-- delivery up at the provider instead of sending again.
CREATE TABLE notification_ledger (
    alert_id      text        NOT NULL,
    phase         text        NOT NULL CHECK (phase IN ('open', 'resolved')),
    channel       text        NOT NULL CHECK (channel IN ('sms', 'whatsapp', 'voice')),
    status        text        NOT NULL
                  CHECK (status IN ('PENDING', 'SENT', 'FAILED', 'RATE_LIMITED', 'SKIPPED')),
    vehicle_id    text        NOT NULL,
    driver_id     text        NOT NULL DEFAULT '',
    driver_key    text        NOT NULL,
    rule          text        NOT NULL,
    severity      text        NOT NULL,
    to_address    text        NOT NULL DEFAULT '',
    from_address  text        NOT NULL DEFAULT '',
    reference     text        NOT NULL,
    provider_sid  text,
    error_code    text        NOT NULL DEFAULT '',
    error_message text        NOT NULL DEFAULT '',
    attempts      integer     NOT NULL DEFAULT 0,
    alert_time    timestamptz NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    decided_at    timestamptz,
    PRIMARY KEY (alert_id, phase, channel)
);

-- A provider resource belongs to one delivery at most (reconciliation relies on it).
CREATE UNIQUE INDEX notification_ledger_provider_sid
    ON notification_ledger (provider_sid) WHERE provider_sid IS NOT NULL;

-- Rebuilding the rate limiter: recent deliveries per driver.
CREATE INDEX notification_ledger_recent
    ON notification_ledger (alert_time) WHERE status IN ('PENDING', 'SENT');

-- Reconciling voice calls: calls already claimed for a destination.
CREATE INDEX notification_ledger_to_address
    ON notification_ledger (to_address, created_at);
