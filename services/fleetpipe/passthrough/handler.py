"""Copies records through (packs whole, with their header); optionally holds each batch open,
so a crash can land inside one."""

from __future__ import annotations

import logging
import time
from typing import Any

from fleetpipe.core.loop import BaseHandler
from fleetpipe.core.packs import PACK_HEADERS, PackedRecord
from fleetpipe.core.records import Output, Record

log = logging.getLogger(__name__)


class PassthroughHandler(BaseHandler):
    def __init__(self, output_topic: str, *, hold_s: float = 0.0) -> None:
        self.output_topic = output_topic
        self.hold_s = hold_s

    def handle(self, records: list[Record[Any]], out: Output) -> None:
        topic = self.output_topic
        singles: list[tuple[bytes | str | None, bytes | None]] = []
        last_pack = None
        for r in records:
            msg = r.msg
            if isinstance(r, PackedRecord):
                # The loop gave one record per event; the pack goes on whole, once, on its
                # partition's number, in order with the single records around it.
                if msg is not last_pack:
                    out.send_many(topic, singles)
                    singles = []
                    value = msg.value()
                    assert value is not None, "a tombstone is never a pack"
                    out.send_to(topic, r.partition, value, PACK_HEADERS)
                    last_pack = msg
            else:
                singles.append((msg.key(), msg.value()))
        out.send_many(topic, singles)
        if self.hold_s:
            # Everything is produced but nothing committed yet: the window crash drills aim at.
            out.poll()
            log.info("holding a batch of %d records open for %.1fs", len(records), self.hold_s)
            time.sleep(self.hold_s)
