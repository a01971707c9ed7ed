"""Notifications sent twice: what the provider holds against what the delivery ledger claims.

Every Message or Call the provider created must be claimed by one row of notification's
ledger (its ``provider_sid``), and no two messages may carry one delivery's reference (the
``FP-…`` tag each text ends with). Read once no delivery is in flight (no ledger row PENDING),
so a message created a moment before its row is settled is not miscounted.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

REFERENCE = re.compile(r"FP-[A-Z2-7]{10}")


@dataclass(frozen=True)
class DeliveryAudit:
    sent: int  # messages and calls the provider holds
    unclaimed: list[dict[str, Any]]  # of those, the ones no ledger row claims
    repeated_references: int  # messages beyond the first carrying one delivery's reference

    @property
    def sent_twice(self) -> int:
        return len(self.unclaimed) + self.repeated_references


def audit_deliveries(
    claimed_sids: Iterable[str | None],
    messages: Sequence[dict[str, Any]],
    calls: Sequence[dict[str, Any]],
) -> DeliveryAudit:
    claimed = {sid for sid in claimed_sids if sid}
    found = [*messages, *calls]
    unclaimed = [
        {k: r.get(k) for k in ("sid", "to", "status", "date_created")}
        for r in found
        if r.get("sid") not in claimed
    ]
    references = Counter(
        ref for m in messages for ref in REFERENCE.findall(str(m.get("body") or ""))
    )
    repeated = sum(n - 1 for n in references.values() if n > 1)
    return DeliveryAudit(len(found), unclaimed, repeated)
