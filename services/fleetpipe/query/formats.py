"""Rows as JSON, CSV or GeoJSON (the table for people is drawn by the command line)."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from fleetpipe.query.statements import Geometry


class Format(StrEnum):
    TABLE = "table"
    JSON = "json"
    CSV = "csv"
    GEOJSON = "geojson"


def plain(value: Any) -> Any:
    """A value JSON can carry: times as ISO 8601, decimals as numbers, NaN as null."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def records(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [{k: plain(v) for k, v in row.items()} for row in rows]


def to_json(data: Any) -> str:
    return json.dumps(plain(data), indent=2)


def to_csv(columns: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(
            ["" if row.get(c) is None else _csv_cell(plain(row.get(c))) for c in columns]
        )
    return out.getvalue()


def _csv_cell(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, dict | list) else value


def has_position(columns: Sequence[str]) -> bool:
    return "lat" in columns and "lon" in columns


def to_geojson(rows: Sequence[Mapping[str, Any]], geometry: Geometry) -> dict[str, Any]:
    """A FeatureCollection: a Point per row with a position, or one LineString of the rows in
    order (a trace) followed by its points. Rows without a position are left out."""
    placed = [r for r in rows if r.get("lat") is not None and r.get("lon") is not None]
    features: list[dict[str, Any]] = []
    if geometry is Geometry.LINE and len(placed) >= 2:
        first = placed[0]
        features.append(
            {
                "type": "Feature",
                "geometry": {
                    "type": "LineString",
                    "coordinates": [[float(r["lon"]), float(r["lat"])] for r in placed],
                },
                "properties": {
                    "vehicle_id": first.get("vehicle_id"),
                    "points": len(placed),
                    "from": plain(first.get("event_time")),
                    "to": plain(placed[-1].get("event_time")),
                },
            }
        )
    for row in placed:
        features.append(
            {
                "type": "Feature",
                "geometry": {
                    "type": "Point",
                    "coordinates": [float(row["lon"]), float(row["lat"])],
                },
                "properties": {k: plain(v) for k, v in row.items() if k not in ("lat", "lon")},
            }
        )
    return {"type": "FeatureCollection", "features": features}
