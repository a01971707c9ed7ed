"""Who an erasure is for: exactly one subject, and always a reason."""

from __future__ import annotations

import pytest

from fleetpipe.erasure.subject import ErasureError, Subject, SubjectKind, subject_of

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("vehicle", "driver", "reason", "complaint"),
    [
        pytest.param("v-1", "", "", "needs a reason", id="no-reason"),
        pytest.param("v-1", "", "   ", "needs a reason", id="blank-reason"),
        pytest.param("", "", "request 1", "exactly one subject", id="no-subject"),
        pytest.param("v-1", "d-1", "request 1", "exactly one subject", id="two-subjects"),
    ],
)
def test_an_erasure_without_one_subject_and_a_reason_is_refused(
    vehicle: str, driver: str, reason: str, complaint: str
) -> None:
    with pytest.raises(ErasureError, match=complaint):
        subject_of(vehicle=vehicle, driver=driver, reason=reason)


def test_the_subject_names_its_column() -> None:
    subject = subject_of(vehicle="", driver=" d-7 ", reason="request 1")
    assert subject == Subject(SubjectKind.DRIVER, "d-7")
    assert subject.kind.column == "driver_id"
