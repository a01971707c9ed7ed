"""PNG charts of a load run: written, valid PNG, whatever the series hold."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest

from fleetpipe_loadtest.charts import write_charts
from fleetpipe_loadtest.report import LoadReport, Sample, latency_series

pytestmark = pytest.mark.unit

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_size(path: Path) -> tuple[int, int]:
    """Check the PNG's structure (signature, chunk CRCs, IHDR first, IEND last); its size."""
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    pos, chunks = len(PNG_SIGNATURE), []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert zlib.crc32(kind + body) == crc, f"bad CRC in {kind!r}"
        chunks.append((kind, body))
        pos += 12 + length
    assert chunks[0][0] == b"IHDR" and chunks[-1][0] == b"IEND"
    assert any(kind == b"IDAT" for kind, _ in chunks)
    width, height = struct.unpack(">II", chunks[0][1][:8])
    return width, height


def _report(points: int) -> LoadReport:
    report = LoadReport("cmd", "now", {}, {})
    report.samples = [
        Sample(float(t), 1000 * t, 990 * t, 950 * t, t, t, {"enrichment": 10, "detection": 3})
        for t in range(points)
    ]
    report.alert_series = latency_series([0.5 * t for t in range(points)], [20.0] * points)
    report.stored_series = latency_series([0.5 * t for t in range(points)], [300.0] * points)
    return report


@pytest.mark.parametrize("points", [pytest.param(0, id="empty"), pytest.param(60, id="a-minute")])
def test_throughput_and_latency_charts_are_valid_png_files(tmp_path: Path, points: int) -> None:
    paths = write_charts(_report(points), tmp_path / "charts", prefix="run-")
    assert [p.name for p in paths] == ["run-throughput.png", "run-latency.png"]
    for path in paths:
        width, height = _png_size(path)
        assert width >= 600 and height >= 300
