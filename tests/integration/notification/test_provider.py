"""The Twilio SDK, as the notification service builds it, talks to the base URL it is given."""

from __future__ import annotations

import pytest

from fleetpipe.notification.provider import twilio_client
from fleetpipe_dev.twilio import TwilioContractServer

pytestmark = pytest.mark.integration


def test_the_sdk_talks_to_the_base_url_given() -> None:
    with TwilioContractServer() as server:
        client = twilio_client(
            server.account_sid, server.auth_token, api_base_url=server.url, timeout_s=5
        )
        client.messages.create(to="+31612345678", from_="+15005550006", body="hi")
        assert [m["body"] for m in server.contract.messages()] == ["hi"]
