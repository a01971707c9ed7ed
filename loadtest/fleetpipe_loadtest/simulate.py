"""``fleetpipe simulate``: drive a simulated fleet into ingest at R Hz per vehicle.

The fleet's vehicles are split into contiguous ranges, one per gRPC stream, so each vehicle's
events travel in order on one stream. In real time (``--speedup 1``) every tick's events leave
within the tick; with a speed-up the simulated clock runs faster (0 = as fast as ingest takes
them) and, unless a start time is given, starts ``duration`` in the past so that no event lies
in the future.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rich.console import Console

from fleetpipe_loadtest.fleet import Fleet
from fleetpipe_loadtest.scenarios import ScenarioMix, write_ground_truth
from fleetpipe_loadtest.sender import SendStats
from fleetpipe_loadtest.transport import BatchSender, Transport, make_sender
from fleetpipe_loadtest.wire import Batcher, encode_tick


@dataclass(frozen=True)
class SimulationOptions:
    vehicles: int
    rate_hz: float
    duration_s: float
    seed: int
    fleet_id: str
    target: str | None  # None: generate only (measures the simulator itself)
    token: str
    streams: int
    batch_size: int
    window: int
    scenarios: ScenarioMix
    speedup: float
    start_time_us: int | None
    ground_truth: Path | None
    registry: Path | None
    root_certificates: bytes | None = None
    progress_every_s: float = 1.0
    protocol: Transport = Transport.GRPC


@dataclass
class SimulationResult:
    generated: int
    stats: SendStats | None
    wall_s: float
    simulated_s: float
    ground_truth: int
    interrupted: bool

    @property
    def events_per_s(self) -> float:
        done = self.stats.acked if self.stats is not None else self.generated
        return done / self.wall_s if self.wall_s else 0.0


def start_time_for(options: SimulationOptions) -> int:
    if options.start_time_us is not None:
        return options.start_time_us
    now = time.time_ns() // 1000
    if options.speedup == 1.0:
        return now
    return now - round(options.duration_s * 1e6)


async def run_simulation(options: SimulationOptions, console: Console) -> SimulationResult:
    fleet = Fleet(
        options.vehicles,
        seed=options.seed,
        fleet_id=options.fleet_id,
        start_time_us=start_time_for(options),
        rate_hz=options.rate_hz,
        scenarios=options.scenarios,
    )
    if options.registry is not None:
        fleet.write_registry(options.registry)
        console.print(f"registry of {options.vehicles:,} vehicles: {options.registry}")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError):
        loop.add_signal_handler(signal.SIGINT, stop.set)
    try:
        result = await _drive(fleet, options, stop, console)
    finally:
        with contextlib.suppress(NotImplementedError):
            loop.remove_signal_handler(signal.SIGINT)
    if options.ground_truth is not None:
        result.ground_truth = write_ground_truth(fleet.ground_truth(), options.ground_truth)
        console.print(
            f"ground truth: {result.ground_truth} episodes in {options.ground_truth}"
            f" ({len(fleet.ground_truth(include_active=True)) - result.ground_truth}"
            " still running at the end are left out)"
        )
    return result


async def _drive(
    fleet: Fleet, options: SimulationOptions, stop: asyncio.Event, console: Console
) -> SimulationResult:
    ticks = round(options.duration_s * options.rate_hz)
    streams = options.streams
    # First vehicle number of each stream's range.
    firsts = np.array([1 + s * options.vehicles // streams for s in range(streams)] + [10**9])
    batchers = [Batcher(options.batch_size) for _ in range(streams)]
    realtime = options.speedup > 0
    tick_wall = 1.0 / options.rate_hz / options.speedup if realtime else 0.0
    generated = 0
    interrupted = False
    t0 = time.monotonic()
    sender = (
        make_sender(
            options.protocol,
            options.target,
            token=options.token,
            fleet_id=options.fleet_id,
            streams=streams,
            window=options.window,
            batch_size=options.batch_size,
            client_tag=f"simulate-{os.getpid()}",
            root_certificates=options.root_certificates,
        )
        if options.target
        else None
    )
    progress = _Progress(console, sender, options, t0)
    async with contextlib.AsyncExitStack() as stack:
        if sender is not None:
            await stack.enter_async_context(sender)
        reporter = asyncio.create_task(progress.run(lambda: generated, lambda: fleet.now_s))
        try:
            for k in range(ticks):
                if stop.is_set():
                    interrupted = True
                    break
                if realtime:
                    delay = t0 + k * tick_wall - time.monotonic()
                    if delay > 0:
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(stop.wait(), delay)
                        if stop.is_set():
                            interrupted = True
                            break
                tick = fleet.tick()
                generated += len(tick)
                cuts = np.searchsorted(tick.vehicle, firsts).tolist()
                whole = encode_tick(tick)  # once per tick, then cut per stream
                for s in range(streams):
                    encoded = whole.rows(cuts[s], cuts[s + 1])
                    ready = list(batchers[s].feed(encoded))
                    if realtime:
                        # A tick's events leave within the tick, not when a batch fills.
                        ready.extend(batchers[s].flush())
                    if sender is not None:
                        for body, count in ready:
                            await sender.send(s, body, count)
                if k % 64 == 0:
                    await asyncio.sleep(0)  # let acks and progress through
            for s in range(streams):
                for body, count in batchers[s].flush():
                    if sender is not None:
                        await sender.send(s, body, count)
            if sender is not None:
                console.print("waiting for the last acknowledgements (Ctrl-C again to give up)")
                stop.clear()
                drain = asyncio.create_task(sender.drain(timeout=120))
                await asyncio.wait({drain, asyncio.create_task(stop.wait())},
                                   return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
                if not drain.done():
                    interrupted = True
                    drain.cancel()
                else:
                    drain.result()
        finally:
            reporter.cancel()
            progress.line(generated, fleet.now_s, final=True)
    return SimulationResult(
        generated=generated,
        stats=sender.stats if sender is not None else None,
        wall_s=time.monotonic() - t0,
        simulated_s=fleet.now_s,
        ground_truth=0,
        interrupted=interrupted,
    )


class _Progress:
    def __init__(
        self, console: Console, sender: BatchSender | None, options: SimulationOptions, t0: float
    ) -> None:
        self.console = console
        self.sender = sender
        self.options = options
        self.t0 = t0
        self.last = (t0, 0)

    async def run(self, generated: object, sim_s: object) -> None:
        assert callable(generated) and callable(sim_s)
        while True:
            await asyncio.sleep(self.options.progress_every_s)
            self.line(generated(), sim_s())

    def line(self, generated: int, sim_s: float, *, final: bool = False) -> None:
        now = time.monotonic()
        st = self.sender.stats if self.sender is not None else None
        done = st.acked if st is not None else generated
        t_last, done_last = self.last
        rate = (done - done_last) / (now - t_last) if now > t_last else 0.0
        if final:
            rate = done / (now - self.t0) if now > self.t0 else 0.0
        self.last = (now, done)
        parts = [f"{now - self.t0:6.1f}s", f"sim {sim_s:8.0f}s", f"generated {generated:,}"]
        if st is not None:
            parts += [
                f"sent {st.sent:,}",
                f"acked {st.acked:,}",
                f"rejected {st.rejected:,}",
                f"late {st.late:,}",
            ]
            if st.errors:
                parts.append(
                    "retries " + ", ".join(f"{k} {v}" for k, v in sorted(st.errors.items()))
                )
        parts.append(f"{rate:,.0f} events/s" + (" overall" if final else ""))
        self.console.print(" | ".join(parts), highlight=False)


def summary(result: SimulationResult) -> str:
    lines = [
        f"{result.generated:,} events generated over {result.simulated_s:,.0f} simulated seconds "
        f"in {result.wall_s:,.1f} s ({result.events_per_s:,.0f} events/s)"
        + (" — interrupted" if result.interrupted else "")
    ]
    st = result.stats
    if st is not None:
        lines.append(
            f"acked {st.acked:,} (accepted {st.accepted:,}, rejected {st.rejected:,}, "
            f"late {st.late:,}); reconnects {st.reconnects}, batches resent {st.resent_batches}"
        )
        if st.ack_latency_s:
            q = statistics.quantiles(st.ack_latency_s, n=100)
            lines.append(f"ack latency p50 {q[49] * 1e3:.1f} ms, p99 {q[98] * 1e3:.1f} ms")
    return "\n".join(lines)
