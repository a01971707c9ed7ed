"""`fleetpipe demo` as a user runs it: the five services, the KPI stage, the simulator and the
Twilio-contract server on the session's real Kafka and PostgreSQL, checked against what they
left behind."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest

from fleetpipe_dev.stack.procs import free_port
from fleetpipe_dev.testing import wait_for
from fleetpipe_loadtest.scenarios import ScenarioKind
from support.servers import BrokerHandle, PostgresHandle, Schema

pytestmark = pytest.mark.e2e

# Scenarios that show within seconds of driving, at rates that give a 200-vehicle fleet a few
# episodes of each in 20 s (a vehicle has one scenario at a time).
SCENARIOS = "crash=40,sos=40,harsh_braking=40,over_revving=40,harsh_acceleration=40"


def _processes_with(marker: str) -> list[int]:
    """Processes whose environment names ``marker`` (the run's topic suffix)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker.encode() in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def _children(pid: int) -> list[int]:
    kids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(entry.name))
    return kids


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _demo_command(
    kafka: BrokerHandle, pg_schema: Schema, suffix: str, workdir: Path, *args: str
) -> list[str]:
    return [
        sys.executable,
        "-m",
        "fleetpipe.cli",
        "demo",
        "--partitions", "3",
        "--kafka", kafka.bootstrap,
        "--postgres-dsn", pg_schema.dsn,
        "--schema", pg_schema.name,
        "--topic-suffix", suffix,
        "--workdir", str(workdir),
        *args,
    ]  # fmt: skip


def test_demo_stores_every_acknowledged_event_once_alerts_notifies_and_cleans_up(
    kafka: BrokerHandle, postgres: PostgresHandle, pg_schema: Schema, tmp_path: Path
) -> None:
    suffix = f"demo{uuid.uuid4().hex[:8]}"
    run = subprocess.run(
        _demo_command(
            kafka,
            pg_schema,
            suffix,
            tmp_path,
            *("--vehicles", "200", "--duration", "20", "--scenarios", SCENARIOS),
            *("--settle-timeout", "120"),
        ),
        env={**os.environ, "COLUMNS": "120"},
        capture_output=True,
        text=True,
        timeout=480,
        check=False,
    )
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-6000:]
    # The summary is a table: its cells wrap, so read its words, not its lines.
    words = " ".join(re.sub("[│┃┆]", " ", out).split())
    assert "FleetPipe demo: summary" in words
    assert "console    http://127.0.0.1:" in out, "the demo prints the fleet console's address"
    assert "every acknowledged event stored exactly once" in words
    assert "ingest → alert p50" in words and "ingest → stored p50" in words

    report = json.loads((tmp_path / "report" / "demo.json").read_text())
    events, stored = report["events"], report["stored"]
    assert events["sent"] == 200 * 20 == events["acknowledged"]
    assert events["rejected"] == 0
    assert stored["missing"] == 0 and stored["duplicates"] == 0 and stored["unexpected"] == 0
    assert stored["stored"] == events["accepted"]

    # The database itself, read independently of the report: every (vehicle, seq) once.
    prefix = report["plan"]["vehicle ids"].removesuffix("veh-NNNNNN")
    with psycopg.connect(pg_schema.dsn, options=f"-c search_path={pg_schema.name}") as conn:
        counted = conn.execute(
            "SELECT count(*), count(DISTINCT (vehicle_id, seq)), count(DISTINCT vehicle_id), "
            "min(seq), max(seq) FROM telemetry WHERE starts_with(vehicle_id, %s)",
            (prefix,),
        ).fetchone()
        assert counted is not None, "an aggregate answers one row"
        rows, distinct, vehicles, low, high = counted
        ledger = conn.execute("SELECT count(*) FROM notification_ledger").fetchone()
        with_stored_time = conn.execute(
            "SELECT count(*) FROM telemetry WHERE starts_with(vehicle_id, %s) "
            "AND stored_time >= ingest_time",
            (prefix,),
        ).fetchone()
    assert rows == distinct == events["accepted"]
    assert vehicles == 200 and (low, high) == (1, 20)
    assert with_stored_time == (rows,)

    # The KPI stage ran beside them: windows of the run stored, shown in the summary.
    assert "FleetPipe demo: fleet KPIs (60 s windows every 10 s)" in words
    assert "vehicles reporting" in words
    with psycopg.connect(pg_schema.dsn, options=f"-c search_path={pg_schema.name}") as conn:
        kpis = conn.execute(
            "SELECT count(*), max(active_vehicles), max(distance_km), max(max_speed_kmh), "
            "min(window_end - window_start) FROM kpi_windows "
            "WHERE fleet_id = 'demo' AND dimension = 'fleet'"
        ).fetchone()
    assert kpis is not None, "an aggregate answers one row"
    windows, most_vehicles, most_km, top_speed, length = kpis
    assert windows >= 1
    assert 0 < most_vehicles <= 200
    assert most_km > 0 and top_speed > 0
    assert length.total_seconds() == 60

    opened = {rule: s.get("OPEN", 0) for rule, s in report["alerts_by_rule"].items()}
    injected = report["injected_by_kind"]
    assert injected, "the simulator injected no scenario"
    assert any(opened.get(kind, 0) > 0 for kind in injected), (opened, injected)
    assert report["latency_ms"]["ingest_to_alert"]["count"] > 0
    assert report["latency_ms"]["ingest_to_stored"]["count"] == rows

    # Every scenario kind the simulator knows has its row, and none is silently zero.
    assert "FleetPipe demo: injected scenarios" in words
    rows = json.loads((tmp_path / "report" / "demo-scenarios.json").read_text())
    assert [r["kind"] for r in rows] == [k.value for k in ScenarioKind]
    assert all(r["ok"] for r in rows), [r for r in rows if not r["ok"]]
    assert any(r["due"] > 0 and r["opened"] >= r["due"] for r in rows), rows
    for row in rows:
        if row["opened"] == 0:
            assert row["note"] != "detected" and row["note"] in words, row

    assert report["notifications_by_status"].get("SENT", 0) > 0, report["notifications_by_status"]
    recorded = report["provider"]
    assert recorded["messages"] + recorded["calls"] > 0, "the Twilio-contract server saw nothing"
    assert ledger is not None and ledger[0] > 0

    _assert_operations_and_webhook_deliveries(pg_schema, prefix, words, tmp_path / "report")

    for name in ("demo.md", "demo-throughput.png", "demo-latency.png"):
        assert (tmp_path / "report" / name).stat().st_size > 0
    assert (tmp_path / "lake").is_dir()

    # Everything the demo started is gone: its services and simulator processes.
    assert {
        "ingest",
        "enrichment",
        "detection",
        "storage-writer",
        "notification",
        "simulator-0",
    } <= set(report["processes"])
    for name, pid in report["processes"].items():
        assert not _alive(pid), f"{name} (pid {pid}) still runs"
    assert _processes_with(suffix) == []


def _assert_operations_and_webhook_deliveries(
    pg_schema: Schema, prefix: str, words: str, report_dir: Path
) -> None:
    """The operations desk's SMS and the webhook's deliveries: some of each, every webhook
    request's signature valid (checked by the demo's receiver with the run's key), and at most
    one delivery per alert phase and recipient — in the ledger and as received."""
    assert "operations" in words and "bad signatures 0" in words, words[-3000:]
    delivered = json.loads((report_dir / "demo-recipients.json").read_text())
    assert delivered["problems"] == []
    phone = delivered["operations"]["phone"]
    assert phone and phone not in ("+15005550006",), "a number of its own for the desk"
    with psycopg.connect(pg_schema.dsn, options=f"-c search_path={pg_schema.name}") as conn:
        rows = conn.execute(
            "SELECT recipient, channel, status, severity, count(*), "
            "count(DISTINCT (alert_id, phase)), count(DISTINCT delivery_id) "
            "FROM notification_ledger WHERE recipient <> 'driver' "
            "AND starts_with(vehicle_id, %s) GROUP BY 1, 2, 3, 4",
            (prefix,),
        ).fetchall()
        to_desk = conn.execute(
            "SELECT DISTINCT to_address FROM notification_ledger WHERE recipient = 'ops:ops_desk'"
        ).fetchall()
    assert rows, "no delivery beyond the drivers"
    for _recipient, _channel, _status, _severity, n, alert_phases, keys in rows:
        assert n == alert_phases == keys, rows
    sent = {(r[0], r[1], r[3]): r[4] for r in rows if r[2] == "SENT"}
    assert not [r for r in rows if r[2] != "SENT"], "every delivery beyond the drivers sent"
    ops_sms = sum(n for (who, ch, _), n in sent.items() if (who, ch) == ("ops:ops_desk", "sms"))
    ops_voice = {sev for (who, ch, sev) in sent if (who, ch) == ("ops:ops_desk", "voice")}
    hooks = sum(n for (who, _, _), n in sent.items() if who == "webhook:dispatch")
    assert ops_sms > 0 and hooks > 0, sent
    assert ops_voice <= {"critical"}, "the desk is called for critical alerts only"
    assert to_desk == [(phone,)]
    # What the Twilio stand-in and the receiver got: one SMS per ledger row, one processed
    # idempotency key per (alert, phase), every request signed with the run's key.
    assert delivered["operations"]["provider"]["sms"] == ops_sms
    receiver = delivered["webhook"]["receiver"]
    assert receiver["processed"] == hooks and receiver["most_per_alert_phase"] == 1
    assert receiver["bad_signatures"] == 0
    assert receiver["requests"] == receiver["processed"] + receiver["redelivered"]
    assert sum(receiver["by_rule"].values()) == hooks
    assert set(receiver["by_severity"]) <= {"warning", "critical"}


def test_ctrl_c_stops_every_process_the_demo_started(
    kafka: BrokerHandle, pg_schema: Schema, tmp_path: Path
) -> None:
    suffix = f"demo{uuid.uuid4().hex[:8]}"
    log = tmp_path / "demo.out"
    with log.open("wb") as out:
        # Its own process group, as a terminal's foreground job: Ctrl-C reaches all of it.
        demo = subprocess.Popen(
            _demo_command(
                kafka,
                pg_schema,
                suffix,
                tmp_path / "work",
                "--vehicles",
                "100",
                "--duration",
                "300",
            ),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for(
            lambda: demo.poll() is not None or "vehicle ids" in log.read_text(errors="replace"),
            timeout=240,
            what="the demo to start sending",
        )
        assert demo.poll() is None, log.read_text()
        assert _processes_with(suffix), "the services run, with the run's topics"

        def all_started() -> list[int] | None:
            children = _children(demo.pid)
            return children if len(children) >= 6 else None

        started = wait_for(all_started, timeout=60, what="five services and the simulator")
        assert len(started) >= 6, "five services and the simulator"
        os.killpg(demo.pid, signal.SIGINT)
        assert demo.wait(120) == 130, log.read_text()[-4000:]
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
    assert "interrupted" in log.read_text()
    # The webhook receiver it started is gone with it: its port refuses connections.
    hook = re.search(r"webhook +dispatch\s+http://127\.0\.0\.1:(\d+)/", log.read_text())
    assert hook is not None, log.read_text()[-2000:]
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", int(hook.group(1))), timeout=5).close()
    assert wait_for(lambda: _processes_with(suffix) == [], timeout=10, what="no service left")
    assert wait_for(lambda: not any(_alive(p) for p in started), timeout=10, what="no child left")


def test_demo_over_mqtt_accounts_for_every_event(
    kafka: BrokerHandle, pg_schema: Schema, tmp_path: Path
) -> None:
    """``--protocol mqtt``: the vehicles publish to Mosquitto (the demo's own, from the local
    stack), the bridge takes them to Kafka, and the summary accounts for every event."""
    suffix = f"demo{uuid.uuid4().hex[:8]}"
    home = tmp_path / "dev-home"
    home.mkdir(mode=0o755)
    run = subprocess.run(
        _demo_command(
            kafka,
            pg_schema,
            suffix,
            tmp_path / "work",
            *("--protocol", "mqtt", "--vehicles", "100", "--duration", "15"),
            *("--settle-timeout", "120", "--no-keep-running"),
        ),
        env={
            **os.environ,
            "COLUMNS": "120",
            "FLEET_DEV_HOME": str(home),
            "FLEET_DEV_MOSQUITTO_PORT": str(free_port()),
        },
        capture_output=True,
        text=True,
        timeout=480,
        check=False,
    )
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-6000:]
    words = " ".join(re.sub("[│┃┆]", " ", out).split())
    assert "mqtt: QoS 1 publishes" in words
    assert "every acknowledged event stored exactly once" in words

    report = json.loads((tmp_path / "work" / "report" / "demo.json").read_text())
    events, stored = report["events"], report["stored"]
    assert report["plan"]["protocol"] == "mqtt"
    assert events["sent"] == 100 * 15 == events["acknowledged"] == events["accepted"]
    assert stored["stored"] == events["accepted"]
    assert stored["missing"] == stored["duplicates"] == stored["unexpected"] == 0
    assert "mqtt-bridge" in report["processes"]
    for name, pid in report["processes"].items():
        assert not _alive(pid), f"{name} (pid {pid}) still runs"
    assert _processes_with(suffix) == []
    assert not any("mosquitto" in _cmdline(pid) and str(home) in _cmdline(pid) for pid in _pids())


def _pids() -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]


def _cmdline(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""
