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
        # The loop gave one record per event; a pack goes on whole, once, on its partition's
        # number, in order with the single records around it.
        runs: list[tuple[Record[Any], int] | list[tuple[bytes | str | None, bytes | None]]] = []
        for r in records:
            if isinstance(r, PackedRecord):
                last = runs[-1] if runs else None
                if isinstance(last, tuple) and last[0].msg is r.msg:
                    runs[-1] = (last[0], last[1] + 1)
                else:
                    runs.append((r, 1))
            elif runs and isinstance(runs[-1], list):
                runs[-1].append((r.msg.key(), r.msg.value()))
            else:
                runs.append([(r.msg.key(), r.msg.value())])
        for run in runs:
            if isinstance(run, list):
                out.send_many(topic, run)
                continue
            first, events = run
            value = first.msg.value()
            assert value is not None, "a tombstone is never a pack"
            out.send_to(topic, first.partition, value, PACK_HEADERS, events=events)
        if self.hold_s:
            # Everything is produced but nothing committed yet: the window crash drills aim at.
            out.poll()
            log.info("holding a batch of %d records open for %.1fs", len(records), self.hold_s)
            time.sleep(self.hold_s)
