"""The live progress panel of a load run (and of the demo), drawn with rich."""

from __future__ import annotations

import math

from rich.console import Group
from rich.table import Table
from rich.text import Text

from fleetpipe_loadtest.loadrun import LiveView


def render(view: LiveView) -> Group:
    head = Text.assemble(
        (f"{view.phase:<10}", "bold cyan"),
        f" {view.elapsed_s:5.0f} s of {view.planned_s:.0f} s   ",
        f"{view.vehicles:,} vehicles sending",
    )
    counts = Table.grid(padding=(0, 3))
    counts.add_row(
        f"sent [bold]{view.sent:,}[/]",
        f"acknowledged [bold]{view.acked:,}[/]",
        f"rejected [bold]{view.rejected:,}[/]",
        f"stored [bold]{view.stored:,}[/]",
    )
    counts.add_row(
        f"[bold]{view.sent_per_s:,.0f}[/] events/s sent",
        f"[bold]{view.stored_per_s:,.0f}[/] events/s stored",
        "",
        "",
    )
    lag = Text(
        "consumer lag "
        + ", ".join(f"{k} {'?' if v < 0 else f'{v:,}'}" for k, v in view.lag.items())
    )
    alerts = Table("alert rule", "open", "update", "resolved", box=None, padding=(0, 2))
    for rule, states in sorted(view.alerts.items()):
        alerts.add_row(
            rule,
            f"{states.get('OPEN', 0):,}",
            f"{states.get('UPDATE', 0):,}",
            f"{states.get('RESOLVED', 0):,}",
        )
    p99 = f"{view.alert_p99_ms:,.0f} ms" if math.isfinite(view.alert_p99_ms) else "-"
    notes = Text(
        "notifications "
        + (", ".join(f"{k.lower()} {v:,}" for k, v in sorted(view.notifications.items())) or "0")
        + (
            "   provider " + ", ".join(f"{k} {v:,}" for k, v in sorted(view.provider.items()))
            if view.provider
            else ""
        )
        + f"   ingest → alert p99 {p99}"
    )
    parts: list[Table | Text] = [head, counts, lag, notes]
    if view.alerts:
        parts.append(alerts)
    return Group(*parts)
