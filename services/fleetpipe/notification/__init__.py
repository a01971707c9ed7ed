"""Notification: alert episodes → the driver, by SMS, WhatsApp or a voice call through Twilio,
and → operations recipients (the same channels) and signed webhooks (recipients.py).

Input ``fleet.alerts.v1`` at least once; a delivery ledger in PostgreSQL makes each
(alert, phase, recipient, channel) delivery happen once — a webhook's under one idempotency
key; outcomes go to ``fleet.notifications.v1``.
"""
