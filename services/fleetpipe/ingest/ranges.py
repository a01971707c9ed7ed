"""The valid range of every numeric field of ``Telemetry``: one table for validator and docs.

Each :class:`Bound` says, for a field (its dotted path from ``Telemetry``), the closed interval a
real sensor can report and what ingest does with a value outside it — NaN and ±inf included, as
no comparison with a finite bound holds for them:

- ``reject``: the event is refused (dead-lettered, named in the ack). Fields the pipeline is
  built on — position, motion, the engine and the state of charge that the alerting rules read —
  are worth nothing when wrong, and a guess would raise alerts or store a lie.
- ``drop``: the event is kept without the field, and the field is listed in the event's
  ``dropped_fields``. Fields no rule depends on (altitude, accuracy, heading, battery voltage,
  odometer) and the optional perception block (dropped whole: "no perception this reading",
  which the collision-risk rule already handles) still leave a useful reading. An object class
  the contract does not declare is the exception in that block: its event is rejected.

Every interval contains 0, the value proto3 gives an absent field, so a message without the
sub-message passes. The integer fields ``seq``, ``event_time_us`` and ``ingest_time_us`` are
listed for the docs with bounds checked by their own code (see ``validation.py``).

:func:`compile_check` turns the table into one Python function of straight-line comparisons,
built once: the hot path pays an attribute read and a chained comparison per field, with no
lookup in the table per event.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pyarrow as pa
from google.protobuf.descriptor import EnumDescriptor
from ptars import HandlerPool

from fleetpipe.pb.v1 import ingest_pb2, telemetry_pb2

Policy = Literal["reject", "drop", "special"]


@dataclass(frozen=True, slots=True)
class Bound:
    path: str  # dotted, from Telemetry
    low: float
    high: float
    unit: str
    policy: Policy
    note: str = ""
    # The enum whose declared values the range spans (its name, for the reason), if any.
    enum: str = ""

    @property
    def drop_path(self) -> str:
        """What is removed for a ``drop``: the perception block goes as a whole."""
        head = self.path.split(".", 1)[0]
        return head if head == "perception" else self.path

    def describe(self) -> str:
        return f"{self.low:g}..{self.high:g}" + (f" {self.unit}" if self.unit else "")

    def outside(self, value: float) -> str:
        """Why ``value`` is refused, naming the field and the value."""
        # An integer field (a gear, an enum's number) is said as the integer it was sent as.
        integral = isinstance(self.low, int) and isinstance(self.high, int)
        shown = f"{value:.0f}" if integral and value.is_integer() else f"{value}"
        if self.enum:
            return f"{self.path} {shown} is not a declared {self.enum} ({self.describe()})"
        return f"{self.path} {shown} is outside {self.describe()}"


U64_MAX = 2**64 - 1


def _enum_max(enum: EnumDescriptor) -> int:
    """The highest number an enum declares (its values start at 0, UNSPECIFIED)."""
    return max(value.number for value in enum.values)


# In checking order: the first field of a rejected event that fails names its rejection.
BOUNDS: tuple[Bound, ...] = (
    Bound("seq", 1, U64_MAX, "", "special", "0 means missing"),
    Bound("event_time_us", 0, 0, "µs", "special", "within the event-time window (settings)"),
    Bound("ingest_time_us", 0, 0, "µs", "special", "set by ingest; a client's value is replaced"),
    Bound("location.lat", -90.0, 90.0, "°", "reject"),
    Bound("location.lon", -180.0, 180.0, "°", "reject"),
    Bound("motion.speed_kmh", 0.0, 400.0, "km/h", "reject"),
    Bound("motion.accel_x_ms2", -500.0, 500.0, "m/s²", "reject", "about 50 g"),
    Bound("motion.accel_y_ms2", -500.0, 500.0, "m/s²", "reject", "about 50 g"),
    Bound("motion.accel_z_ms2", -500.0, 500.0, "m/s²", "reject", "about 50 g"),
    Bound("engine.rpm", 0, 20_000, "rpm", "reject"),
    Bound("engine.gear", -1, 20, "", "reject", "-1 reverse, 0 neutral"),
    Bound("engine.fuel_pct", 0.0, 100.0, "%", "reject"),
    Bound("engine.coolant_temp_c", -60.0, 300.0, "°C", "reject"),
    Bound("battery.pct", 0.0, 100.0, "%", "reject"),
    # An enum: proto3 parses any number into it, so a value no release defines passes the
    # decoder and must be caught here. Its range follows the enum's declared values. The event
    # is refused rather than kept without its perception: a class the contract does not
    # declare is a device speaking another contract (or a corrupted one), which a person must
    # hear of; dropping the block would hide it as "no perception this reading".
    Bound(
        "perception.nearest_object_class",
        0,
        _enum_max(telemetry_pb2.ObjectClass.DESCRIPTOR),
        "",
        "reject",
        "a declared ObjectClass value",
        enum="ObjectClass",
    ),
    Bound("location.altitude_m", -500.0, 9_000.0, "m", "drop"),
    Bound("location.accuracy_m", 0.0, 50_000.0, "m", "drop", "horizontal radius"),
    Bound("location.heading_deg", 0.0, 360.0, "°", "drop"),
    Bound("battery.voltage", 0.0, 1_000.0, "V", "drop"),
    Bound("odometer_km", 0.0, 10_000_000.0, "km", "drop"),
    Bound("perception.nearest_object_distance_m", 0.0, 1_000.0, "m", "drop", "drops perception"),
    Bound("perception.closing_speed_ms", -150.0, 150.0, "m/s", "drop", "drops perception"),
)

CHECKED = tuple(b for b in BOUNDS if b.policy != "special")
REJECTED = tuple(b for b in CHECKED if b.policy == "reject")
DROPPED = tuple(b for b in CHECKED if b.policy == "drop")


def value_at(e: telemetry_pb2.Telemetry, path: str) -> float:
    """The field at ``path`` (absent sub-messages read as their defaults)."""
    target: object = e
    for name in path.split("."):
        target = getattr(target, name)
    return float(target)  # type: ignore[arg-type]


def compile_check(
    bounds: tuple[Bound, ...], *, nonzero: tuple[str, ...] = ()
) -> Callable[[telemetry_pb2.Telemetry], bool]:
    """One function: are all ``bounds`` of an event within range (NaN and ±inf are not)?

    Generated from the table as the source of one expression, so the per-event cost is that of
    hand-written comparisons; each sub-message is read once. With ``nonzero``, it is also false
    when all those fields are 0 (an absent sub-message, for the caller to look into).
    """
    parents = sorted({b.path.split(".")[0] for b in bounds if "." in b.path})
    lines = ["def check(e):"]
    lines += [f"    {p} = e.{p}" for p in parents]
    terms = [f"{b.low!r} <= {_local(b.path)} <= {b.high!r}" for b in bounds]
    if nonzero:
        terms.insert(0, "(" + " or ".join(f"{_local(p)} != 0" for p in nonzero) + ")")
    lines.append("    return " + (" and ".join(terms) if terms else "True"))
    namespace: dict[str, object] = {}
    source = compile("\n".join(lines), f"<ranges of {len(bounds)} fields>", "exec")
    exec(source, namespace)  # noqa: S102 - the source is built from the constant table above
    check = namespace["check"]
    assert callable(check)
    return check


def _local(path: str) -> str:
    # "location.lat" -> "location.lat" read through the local bound to the sub-message.
    return path if "." in path else f"e.{path}"


def markdown_table() -> str:
    """The table as Markdown, for the docs (a test checks the committed copy)."""
    rows = [
        "| field | valid range | outside it | note |",
        "| --- | --- | --- | --- |",
    ]
    for b in BOUNDS:
        if b.policy == "special":
            valid = "≥ 1" if b.path == "seq" else "see note"
            action = "rejected" if b.path != "ingest_time_us" else "replaced"
        else:
            valid = b.describe() + ", finite"
            action = "event rejected" if b.policy == "reject" else f"`{b.drop_path}` dropped"
        rows.append(f"| `{b.path}` | {valid} | {action} | {b.note} |")
    return "\n".join(rows) + "\n"


class BatchRanges:
    """The range check of a whole serialised ``TelemetryBatch`` at once, for large batches.

    ptars decodes the batch into Arrow columns in Rust and numpy compares each column with its
    bounds: a few vector operations per field instead of an attribute read per field and event,
    which is what the per-event check spends its time on. It answers as :func:`compile_check`
    does (a unit test holds them to it); below ``COLUMNAR_FROM`` events ptars' fixed cost per
    call does not pay.
    """

    COLUMNAR_FROM = 256

    def __init__(self, bounds: tuple[Bound, ...], *, nonzero: tuple[str, ...] = ()) -> None:
        self._bounds = bounds
        self._nonzero = nonzero
        self._wire = HandlerPool([ingest_pb2.DESCRIPTOR]).get_for_message(
            ingest_pb2.TelemetryBatch.DESCRIPTOR
        )

    def within(self, raw_batch: bytes) -> list[bool] | None:
        """Per event of the batch, are all bounds within range? None: not decodable here."""
        try:
            rb: pa.RecordBatch = self._wire.list_to_record_batch([raw_batch])
        except Exception:  # the per-event check is the fallback, whatever failed here
            return None
        events: Any = rb.column("events").flatten()
        columns: dict[str, npt.NDArray[np.float64]] = {}

        def column(path: str) -> npt.NDArray[np.float64]:
            got = columns.get(path)
            if got is None:
                array = events
                for name in path.split("."):
                    array = array.field(name)
                # float32 fields compared in float64, as Python compares them one by one.
                got = array.to_numpy(zero_copy_only=False).astype(np.float64)
                columns[path] = got
            return got

        ok = np.ones(len(events), dtype=np.bool_)
        if self._nonzero:
            present = np.zeros(len(events), dtype=np.bool_)
            for path in self._nonzero:
                present |= column(path) != 0
            ok &= present
        for b in self._bounds:
            values = column(b.path)
            ok &= (values >= b.low) & (values <= b.high)
        result: list[bool] = ok.tolist()
        return result
