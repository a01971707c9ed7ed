"""Which erasures a console token may run: only of subjects whose rows all lie in its fleets."""

from __future__ import annotations

import pytest

from fleetpipe.console.erasure import check_scope
from fleetpipe.erasure.subject import Subject, SubjectKind
from fleetpipe.query.errors import Forbidden, NotFound
from fleetpipe.query.scope import Scope

pytestmark = pytest.mark.unit

VEHICLE = Subject(SubjectKind.VEHICLE, "fleet-a-veh-000001")
FLEET_A = Scope(frozenset({"fleet-a"}))


@pytest.mark.parametrize(
    ("scope", "fleets", "refusal"),
    [
        pytest.param(FLEET_A, {"fleet-a"}, None, id="its-own-fleet"),
        pytest.param(Scope(None), {"fleet-a", "fleet-b"}, None, id="every-fleet-token"),
        pytest.param(FLEET_A, {"fleet-b"}, NotFound, id="another-fleet-is-unknown"),
        pytest.param(FLEET_A, set(), NotFound, id="no-rows-anywhere"),
        pytest.param(FLEET_A, {"fleet-a", "fleet-b"}, Forbidden, id="rows-in-another-fleet-too"),
    ],
)
def test_a_token_erases_only_subjects_wholly_in_its_fleets(
    scope: Scope, fleets: set[str], refusal: type[Exception] | None
) -> None:
    if refusal is None:
        check_scope(scope, VEHICLE, fleets)
    else:
        with pytest.raises(refusal, match="fleet"):
            check_scope(scope, VEHICLE, fleets)
