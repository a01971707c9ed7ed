"""The alert episode machine: one OPEN, optional UPDATEs, one RESOLVED — never one per event.

::

    (quiet) ──condition──► PENDING ──held ≥ min_duration──► OPEN ──gone──► CLEARING
       ▲                      │                              ▲                │
       └──condition gone──────┘                              └──back again────┤
       ▲                                                                      │
       └──────────────────── gone ≥ clear_after: RESOLVED ◄───────────────────┘

The episode starts when the condition first held (PENDING), which is what the alert id is
derived from; it ends when the condition was last gone for good (the start of CLEARING). Time
is the vehicle's event time, never the wall clock, so a replay takes the same path. The caller
feeds events in seq order and drops duplicates and stragglers before they get here.
"""

from __future__ import annotations

from uuid import NAMESPACE_URL, uuid5

from fleetpipe.detection.state import CLEARING, OPEN, PENDING, Episode

NONE = 0
OPENED = 1
UPDATED = 2
RESOLVED = 3

ALERT_NAMESPACE = uuid5(NAMESPACE_URL, "https://fleetpipe.io/alerts/v1")
TRIP_NAMESPACE = uuid5(NAMESPACE_URL, "https://fleetpipe.io/trips/v1")


def alert_id(vehicle_id: str, rule_key: str, episode_start_us: int) -> str:
    """Deterministic: the same episode always gets the same id, whoever detects it, replays too."""
    return str(uuid5(ALERT_NAMESPACE, f"{vehicle_id}/{rule_key}/{episode_start_us}"))


def trip_id(vehicle_id: str, start_us: int) -> str:
    return str(uuid5(TRIP_NAMESPACE, f"{vehicle_id}/{start_us}"))


def advance(
    episode: Episode | None,
    value: float | None,
    t_us: int,
    seq: int,
    *,
    min_us: int,
    clear_us: int,
    update_us: int = 0,
    lower_is_worse: bool = False,
) -> tuple[Episode | None, int]:
    """One event through one rule's episode.

    ``value`` is what the rule's check returned (``None``: the condition does not hold).
    Returns the episode to keep (``None``: quiet again) and what to announce: ``NONE``,
    ``OPENED``, ``UPDATED`` or ``RESOLVED``. On ``RESOLVED`` the returned episode is the one that
    just ended, for the alert; the caller then forgets it.
    """
    if episode is None:
        if value is None:
            return None, NONE
        episode = Episode(PENDING, t_us, t_us, value, seq)
        if min_us <= 0:
            episode.phase = OPEN
            episode.last_update_us = t_us
            return episode, OPENED
        return episode, NONE

    phase = episode.phase
    if phase == PENDING:
        if value is None:
            return None, NONE  # lapsed before it lasted long enough: never announced
        if (value < episode.peak) if lower_is_worse else (value > episode.peak):
            episode.peak = value
        if t_us - episode.start_us >= min_us:
            episode.phase = OPEN
            episode.last_update_us = t_us
            return episode, OPENED
        return episode, NONE

    if value is not None:
        if (value < episode.peak) if lower_is_worse else (value > episode.peak):
            episode.peak = value
        episode.phase = OPEN
        if update_us > 0 and t_us - episode.last_update_us >= update_us:
            episode.last_update_us = t_us
            return episode, UPDATED
        return episode, NONE

    if phase == OPEN:
        episode.phase = CLEARING
        episode.since_us = t_us
    if t_us - episode.since_us >= clear_us:
        return episode, RESOLVED
    return episode, NONE
