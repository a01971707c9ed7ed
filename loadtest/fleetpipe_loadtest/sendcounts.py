"""What the senders count, as one tally from a stream to a worker process to the run's report."""

from __future__ import annotations

from dataclasses import dataclass, fields


# Keyword-only, so a subclass may put required fields of its own first (``LoadReport``).
@dataclass(kw_only=True)
class SendCounts:
    """Events and batches as the ingest server acknowledged them."""

    sent: int = 0  # events handed to a stream for the first time
    accepted: int = 0
    rejected: int = 0
    late: int = 0  # accepted, and flagged as late by ingest
    reconnects: int = 0
    resent_batches: int = 0

    @property
    def acked(self) -> int:
        return self.accepted + self.rejected

    def counts(self) -> SendCounts:
        """The counts alone, without what a subclass adds (a worker's progress message)."""
        return SendCounts(**{f.name: getattr(self, f.name) for f in fields(SendCounts)})

    def add(self, other: SendCounts) -> None:
        for f in fields(SendCounts):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))
