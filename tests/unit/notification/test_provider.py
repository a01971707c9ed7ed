"""How provider failures are classified, and the SDK pointed at another base URL."""

from __future__ import annotations

import pytest
import requests
from twilio.base.exceptions import TwilioRestException

from fleetpipe.notification.provider import ProviderError, classify, twilio_client

pytestmark = pytest.mark.unit


def _rest(status: int, code: int) -> TwilioRestException:
    return TwilioRestException(status, "https://api.twilio.com/x", "msg", code)


@pytest.mark.parametrize(
    ("exc", "transient", "ambiguous", "code"),
    [
        pytest.param(_rest(400, 21211), False, False, "21211", id="invalid-number-permanent"),
        pytest.param(_rest(400, 21614), False, False, "21614", id="not-mobile-permanent"),
        pytest.param(_rest(400, 21610), False, False, "21610", id="unsubscribed-permanent"),
        pytest.param(_rest(429, 20429), True, False, "20429", id="429-retry-not-ambiguous"),
        pytest.param(_rest(500, 20500), True, True, "20500", id="500-retry-ambiguous"),
        pytest.param(_rest(503, 20503), True, True, "20503", id="503-retry-ambiguous"),
        pytest.param(_rest(401, 20003), True, False, "20003", id="bad-credentials-wait"),
        pytest.param(requests.ReadTimeout("slow"), True, True, "timeout", id="timeout"),
        pytest.param(requests.ConnectionError("refused"), True, True, "connection", id="conn"),
    ],
)
def test_classify(exc: Exception, transient: bool, ambiguous: bool, code: str) -> None:
    err = classify(exc)
    assert (err.transient, err.ambiguous, err.code) == (transient, ambiguous, code)


def test_classify_reraises_what_it_does_not_know() -> None:
    with pytest.raises(KeyError):
        classify(KeyError("bug"))


def test_a_base_url_must_be_http() -> None:
    with pytest.raises(ValueError, match="api_base_url"):
        twilio_client("AC1", "t", api_base_url="ftp://x", timeout_s=5)


def test_provider_error_keeps_its_classification() -> None:
    err = ProviderError("m", code="c", transient=True, ambiguous=True)
    assert (err.message, err.code, err.transient, err.ambiguous) == ("m", "c", True, True)
