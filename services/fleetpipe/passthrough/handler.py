"""Copies records through; optionally holds each batch open, so a crash can land inside one."""

from __future__ import annotations

import logging
import time
from typing import Any

from fleetpipe.core.loop import BaseHandler
from fleetpipe.core.records import Output, Record

log = logging.getLogger(__name__)


class PassthroughHandler(BaseHandler):
    def __init__(self, output_topic: str, *, hold_s: float = 0.0) -> None:
        self.output_topic = output_topic
        self.hold_s = hold_s

    def handle(self, records: list[Record[Any]], out: Output) -> None:
        out.send_many(self.output_topic, [(r.msg.key(), r.msg.value()) for r in records])
        if self.hold_s:
            # Everything is produced but nothing committed yet: the window crash drills aim at.
            out.poll()
            log.info("holding a batch of %d records open for %.1fs", len(records), self.hold_s)
            time.sleep(self.hold_s)
