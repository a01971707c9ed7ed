-- Deliveries beyond the driver: operations recipients ('ops:<name>') and webhook sinks
-- ('webhook:<name>') are rows of the same ledger, claimed before the send and settled after.
-- Every row gets a delivery_id, assigned once: a webhook sends it as its Idempotency-Key.
ALTER TABLE notification_ledger ADD COLUMN recipient text NOT NULL DEFAULT 'driver';
ALTER TABLE notification_ledger ADD COLUMN delivery_id uuid NOT NULL DEFAULT gen_random_uuid();

ALTER TABLE notification_ledger DROP CONSTRAINT notification_ledger_channel_check;
ALTER TABLE notification_ledger ADD CONSTRAINT notification_ledger_channel_check
    CHECK (channel IN ('sms', 'whatsapp', 'voice', 'webhook'));

ALTER TABLE notification_ledger DROP CONSTRAINT notification_ledger_pkey;
ALTER TABLE notification_ledger ADD PRIMARY KEY (alert_id, phase, recipient, channel);

CREATE UNIQUE INDEX notification_ledger_delivery_id ON notification_ledger (delivery_id);
