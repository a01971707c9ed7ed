"""Notification: alert episodes → the driver, by SMS, WhatsApp or a voice call through Twilio.

Input ``fleet.alerts.v1`` at least once; a delivery ledger in PostgreSQL makes each
(alert, channel) reach the driver once; outcomes go to ``fleet.notifications.v1``.
"""
