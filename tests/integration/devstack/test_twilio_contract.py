"""The Twilio-contract server, driven by the real twilio SDK as the services drive it."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import requests
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from fleetpipe.notification.provider import twilio_client
from fleetpipe_dev.twilio import TwilioContractServer
from fleetpipe_dev.twilio.resources import FaultKind

pytestmark = pytest.mark.integration

FROM, TO = "+15005550006", "+31612345678"


@pytest.fixture
def server() -> Iterator[TwilioContractServer]:
    with TwilioContractServer() as s:
        yield s


@pytest.fixture
def client(server: TwilioContractServer) -> Client:
    return twilio_client(
        server.account_sid, server.auth_token, api_base_url=server.url, timeout_s=2
    )


def test_create_message_answers_like_twilio(server: TwilioContractServer, client: Client) -> None:
    message = client.messages.create(to=TO, from_=FROM, body="Speeding on van-12")
    assert message.sid.startswith("SM") and len(message.sid) == 34
    assert (message.status, message.to, message.from_) == ("queued", TO, FROM)
    assert message.account_sid == server.account_sid
    assert message.date_created is not None and message.error_code is None
    fetched = client.messages(message.sid).fetch()
    assert (fetched.sid, fetched.body, fetched.status) == (
        message.sid,
        "Speeding on van-12",
        "delivered",
    )
    (req,) = server.contract.creates()
    assert req.form == {"To": [TO], "From": [FROM], "Body": ["Speeding on van-12"]}


def test_whatsapp_addresses(server: TwilioContractServer, client: Client) -> None:
    message = client.messages.create(to=f"whatsapp:{TO}", from_=f"whatsapp:{FROM}", body="hi")
    assert message.to == f"whatsapp:{TO}"
    with pytest.raises(TwilioRestException) as err:
        client.messages.create(to=f"whatsapp:{TO}", from_=FROM, body="hi")
    assert err.value.code == 63007


@pytest.mark.parametrize(
    ("to", "code"),
    [
        pytest.param("+1234", 21211, id="not-e164"),
        pytest.param("+15005550001", 21211, id="magic-invalid"),
        pytest.param("+15005550009", 21614, id="magic-not-mobile"),
        pytest.param("+15005550004", 21610, id="magic-unsubscribed"),
    ],
)
def test_invalid_numbers_get_twilio_errors(client: Client, to: str, code: int) -> None:
    with pytest.raises(TwilioRestException) as err:
        client.messages.create(to=to, from_=FROM, body="hi")
    assert (err.value.status, err.value.code) == (400, code)


def test_rejected_numbers_can_be_configured(server: TwilioContractServer, client: Client) -> None:
    server.contract.reject_number(TO, code=21614)
    with pytest.raises(TwilioRestException) as err:
        client.messages.create(to=TO, from_=FROM, body="hi")
    assert err.value.code == 21614
    assert server.contract.messages() == []


def test_wrong_credentials_are_refused(server: TwilioContractServer) -> None:
    bad = twilio_client(server.account_sid, "nope", api_base_url=server.url, timeout_s=2)
    with pytest.raises(TwilioRestException) as err:
        bad.messages.create(to=TO, from_=FROM, body="hi")
    assert (err.value.status, err.value.code) == (401, 20003)


def test_faults_fail_the_next_requests_then_stop(
    server: TwilioContractServer, client: Client
) -> None:
    server.contract.fail_next(2, status=500)
    server.contract.fail_next(1, status=429)
    codes = []
    for _ in range(3):
        with pytest.raises(TwilioRestException) as err:
            client.messages.create(to=TO, from_=FROM, body="hi")
        codes.append((err.value.status, err.value.code))
    assert codes == [(500, 20500), (500, 20500), (429, 20429)]
    client.messages.create(to=TO, from_=FROM, body="hi")
    assert len(server.contract.messages()) == 1
    assert [r.status for r in server.contract.creates()] == [500, 500, 429, 201]


@pytest.mark.parametrize(
    ("kind", "created"),
    [
        pytest.param("timeout", 0, id="before-create"),
        pytest.param("timeout_after_create", 1, id="after-create"),
    ],
)
def test_a_hang_times_the_client_out(
    server: TwilioContractServer, kind: FaultKind, created: int
) -> None:
    client = twilio_client(
        server.account_sid, server.auth_token, api_base_url=server.url, timeout_s=0.5
    )
    server.contract.fail_next(1, kind=kind, hang_s=5)
    with pytest.raises(requests.Timeout):
        client.messages.create(to=TO, from_=FROM, body="hi")
    assert len(server.contract.messages()) == created


def test_list_filters_and_pages_newest_first(server: TwilioContractServer, client: Client) -> None:
    for i in range(120):
        client.messages.create(to=TO if i % 2 else "+31600000000", from_=FROM, body=f"m{i}")
    mine = client.messages.list(to=TO, page_size=25)
    assert len(mine) == 60 and all(m.to == TO for m in mine)
    assert mine[0].date_created >= mine[-1].date_created
    assert [m.body for m in client.messages.list(to=TO, limit=3)] == ["m119", "m117", "m115"]
    today = datetime.now(UTC)
    assert len(client.messages.list(date_sent_after=today - timedelta(hours=1))) == 120
    assert client.messages.list(date_sent_before=today - timedelta(days=1)) == []


def test_calls_with_twiml(server: TwilioContractServer, client: Client) -> None:
    call = client.calls.create(to=TO, from_=FROM, twiml="<Response><Say>Crash</Say></Response>")
    assert call.sid.startswith("CA") and call.status == "queued"
    assert client.calls(call.sid).fetch().status == "completed"
    assert [c.sid for c in client.calls.list(to=TO)] == [call.sid]
    with pytest.raises(TwilioRestException) as err:
        client.calls.create(to=TO, from_=FROM, twiml="<Response><Say>")
    assert err.value.code == 12100
    with pytest.raises(TwilioRestException) as err:
        client.calls.create(to=TO, from_=FROM)
    assert err.value.code == 21205


def test_fetch_of_an_unknown_message_is_404(client: Client) -> None:
    with pytest.raises(TwilioRestException) as err:
        client.messages("SM" + "0" * 32).fetch()
    assert (err.value.status, err.value.code) == (404, 20404)


def test_control_api_for_another_process(server: TwilioContractServer, client: Client) -> None:
    import base64

    auth = base64.b64encode(f"{server.account_sid}:{server.auth_token}".encode()).decode()

    def call(method: str, path: str, body: object = None) -> object:
        req = urllib.request.Request(
            server.url + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Basic {auth}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=5) as r:
            raw = r.read()
            return json.loads(raw) if raw else None

    call("POST", "/_contract/faults", {"count": 1, "status": 500})
    with pytest.raises(TwilioRestException):
        client.messages.create(to=TO, from_=FROM, body="hi")
    client.messages.create(to=TO, from_=FROM, body="hi")
    messages = call("GET", "/_contract/messages")
    assert isinstance(messages, list) and len(messages) == 1
    call("POST", "/_contract/reset", {})
    assert server.contract.messages() == []
