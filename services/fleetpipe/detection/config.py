"""The rules file: every detection threshold, nested by rule name.

The operator renders this file from a FleetPipeline's ``spec.rules`` (a ConfigMap mounted into
the detection pods, followed without a restart); without a file the defaults below apply. Every
key is optional; unknown keys are refused, and a bad value is reported with its path
(``speeding.threshold_kmh: ...``). The CRD's schema for ``spec.rules`` is generated from
:class:`Rules` (``make crd-schema``), so the API server refuses the same mistakes.

Every alerting rule accepts the common keys:

=====================  =======================================================================
``enabled``            false switches the rule off
``severity``           ``info`` | ``warning`` | ``critical``
``min_duration_s``     the condition must hold this long before the episode OPENs (0: at once)
``clear_after_s``      ...and be gone this long before it is RESOLVED (hysteresis in time)
``update_interval_s``  while open, send an UPDATE this often (0: never)
=====================  =======================================================================

The rules and their own keys, with their defaults (the seeds' thresholds where they give one)::

    profile: seed              # seed | realistic: realistic changes the defaults the seeds
                               # set unrealistically (overheating: 110 °C coolant, not 200 °C;
                               # gear_mismatch: one gear off is tolerated, not only an exact gear)
    speeding:        {threshold_kmh: 80, use_zone_limit: true, use_vehicle_limit: true,
                      tolerance_kmh: 0, hysteresis_kmh: 5, min_duration_s: 10,
                      clear_after_s: 10,
                      tiers: [{severity: critical, above_kmh: 120}]}
                               # which limit applies, and tiers: fleetpipe.detection.speeding
    low_fuel:        {threshold_pct: 10, hysteresis_pct: 2, min_duration_s: 30, clear_after_s: 60}
    overheating:     {threshold_c: 200, hysteresis_c: 5, min_duration_s: 10, clear_after_s: 30}
    low_battery:     {threshold_pct: 15, hysteresis_pct: 2, electric_only: false,
                      min_duration_s: 30, clear_after_s: 60}
    over_revving:    {threshold_rpm: 6000, hysteresis_rpm: 300, min_duration_s: 2,
                      clear_after_s: 5}
    gear_mismatch:   {tolerance_gears: 0, min_speed_kmh: 5, min_duration_s: 10,
                      clear_after_s: 5}
    harsh_braking:   {threshold_ms2: 4.0, hysteresis_ms2: 0.5, min_duration_s: 0,
                      clear_after_s: 3}
    harsh_acceleration: {threshold_ms2: 3.5, hysteresis_ms2: 0.5, min_duration_s: 0,
                      clear_after_s: 3}
    crash:           {accel_threshold_ms2: 30, use_device_alarm: true, min_duration_s: 0,
                      clear_after_s: 60, severity: critical}
    sos:             {min_duration_s: 0, clear_after_s: 10, severity: critical}
    tamper:          {min_duration_s: 0, clear_after_s: 60, severity: critical}
    power_cut:       {min_duration_s: 0, clear_after_s: 60, severity: critical}
                               # the device's own alarms (alarms.tamper, alarms.power_cut)
    dtc:             {min_duration_s: 10, clear_after_s: 60}
                               # diagnostic trouble codes reported (dtc_codes; alert
                               # diagnostic_trouble_code, the codes in its message)
    service_due:     {interval_km: 15000, severity: info}
                               # odometer_km >= the registry's last_service_km + interval_km
                               # (vehicles without a recorded service: never)
    idling:          {max_speed_kmh: 2, min_duration_s: 300, clear_after_s: 0}
    offline:         {after_s: 600, check_interval_s: 10, max_clock_skew_s: 604800}
                               # an event whose device time is further than max_clock_skew_s
                               # from its ingest time is timed by ingest's clock instead
    collision_risk:  {ttc_s: 2.0, hysteresis_s: 0.5, min_closing_speed_ms: 0.5,
                      min_duration_s: 0, clear_after_s: 2, severity: critical}
    geofence:        {min_duration_s: 5, clear_after_s: 10,
                      fences: [{name: depot, kind: keep_in,     # keep_in alerts geofence_exit,
                                polygon: [[52.30, 4.80], ...],  # keep_out geofence_entry;
                                fleets: []}]}                   # [lat, lon]; [] = all fleets
    trips:           {start_speed_kmh: 5, stop_speed_kmh: 2, end_after_stop_s: 600,
                      end_on_ignition_off: true, max_gap_s: 600, max_plausible_kmh: 300}
    driver_score:    {window_s: 3600, bucket_s: 600, min_driving_s: 300,
                      speeding_weight: 50, harsh_event_weight: 5, idle_weight: 10}

Severities default to ``warning`` except ``crash``, ``sos``, ``tamper``, ``power_cut`` and
``collision_risk`` (``critical``) and ``idling`` and ``gear_mismatch`` (``info``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from fleetpipe.core.errors import ConfigError
from fleetpipe.core.zones import NAME_PATTERN, checked_polygon, zone_name

Severity = Literal["info", "warning", "critical"]

REALISTIC_OVERHEATING_C = 110.0
SEED_OVERHEATING_C = 200.0
# What the realistic profile changes when the file does not set it: (rule, key, value).
REALISTIC_DEFAULTS = (
    ("overheating", "threshold_c", REALISTIC_OVERHEATING_C),
    ("gear_mismatch", "tolerance_gears", 1),
)


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RuleConfig(_Model):
    enabled: bool = True
    severity: Severity = "warning"
    min_duration_s: float = Field(default=0.0, ge=0, le=86_400)
    clear_after_s: float = Field(default=0.0, ge=0, le=86_400)
    update_interval_s: float = Field(default=0.0, ge=0, le=86_400)


class SpeedTier(_Model):
    """A further speeding tier: its own episode and severity (see detection/speeding.py)."""

    severity: Severity
    # Exactly one of: an absolute speed (the seed's "speed > 120"), or a margin over the limit
    # that applies to the vehicle where it is.
    above_kmh: float | None = Field(default=None, gt=0, le=400)
    over_limit_kmh: float | None = Field(default=None, ge=0, le=400)

    @model_validator(mode="after")
    def _one_bound(self) -> SpeedTier:
        if (self.above_kmh is None) == (self.over_limit_kmh is None):
            raise ValueError("a tier sets exactly one of above_kmh and over_limit_kmh")
        return self


class SpeedingConfig(RuleConfig):
    # The fleet's limit wherever no zone limit applies; a vehicle's own limit may lower it.
    threshold_kmh: float = Field(default=80.0, gt=0, le=400)
    # Inside a speed zone, its posted limit replaces threshold_kmh (higher or lower).
    use_zone_limit: bool = True
    # A vehicle type's (or speed profile's) limit caps the limit from above.
    use_vehicle_limit: bool = True
    tolerance_kmh: float = Field(default=0.0, ge=0, le=100)
    hysteresis_kmh: float = Field(default=5.0, ge=0, le=100)
    min_duration_s: float = Field(default=10.0, ge=0, le=86_400)
    clear_after_s: float = Field(default=10.0, ge=0, le=86_400)
    # Seed 000's "> 80" is the base tier above; seed 002's "> 120" is a critical tier.
    tiers: list[SpeedTier] = Field(
        default_factory=lambda: [SpeedTier(severity="critical", above_kmh=120.0)], max_length=3
    )

    @model_validator(mode="after")
    def _distinct_tiers(self) -> SpeedingConfig:
        # A tier's episode is keyed by its severity: two tiers of one severity would share it.
        severities = [self.severity, *(t.severity for t in self.tiers)]
        if len(set(severities)) != len(severities):
            raise ValueError(
                "tiers: each tier needs a severity of its own, different from the rule's "
                f"({self.severity})"
            )
        return self


class LowFuelConfig(RuleConfig):
    threshold_pct: float = Field(default=10.0, gt=0, le=100)
    hysteresis_pct: float = Field(default=2.0, ge=0, le=50)
    min_duration_s: float = Field(default=30.0, ge=0, le=86_400)
    clear_after_s: float = Field(default=60.0, ge=0, le=86_400)


class OverheatingConfig(RuleConfig):
    # The seeds' 200 °C unless the profile or the file says otherwise (Rules._profile_defaults).
    threshold_c: float = Field(default=SEED_OVERHEATING_C, gt=0, le=1000)
    hysteresis_c: float = Field(default=5.0, ge=0, le=100)
    min_duration_s: float = Field(default=10.0, ge=0, le=86_400)
    clear_after_s: float = Field(default=30.0, ge=0, le=86_400)


class LowBatteryConfig(RuleConfig):
    threshold_pct: float = Field(default=15.0, gt=0, le=100)
    hysteresis_pct: float = Field(default=2.0, ge=0, le=50)
    electric_only: bool = False
    min_duration_s: float = Field(default=30.0, ge=0, le=86_400)
    clear_after_s: float = Field(default=60.0, ge=0, le=86_400)


class OverRevvingConfig(RuleConfig):
    threshold_rpm: float = Field(default=6000.0, gt=0, le=30_000)
    hysteresis_rpm: float = Field(default=300.0, ge=0, le=10_000)
    min_duration_s: float = Field(default=2.0, ge=0, le=86_400)
    clear_after_s: float = Field(default=5.0, ge=0, le=86_400)


class GearMismatchConfig(RuleConfig):
    severity: Severity = "info"
    # 0 is the seed's "gear != expected gear"; the minimum duration rides out gear changes.
    tolerance_gears: int = Field(default=0, ge=0, le=10)
    min_speed_kmh: float = Field(default=5.0, ge=0, le=400)
    min_duration_s: float = Field(default=10.0, ge=0, le=86_400)
    clear_after_s: float = Field(default=5.0, ge=0, le=86_400)


class HarshConfig(RuleConfig):
    threshold_ms2: float = Field(default=4.0, gt=0, le=100)
    hysteresis_ms2: float = Field(default=0.5, ge=0, le=50)
    clear_after_s: float = Field(default=3.0, ge=0, le=86_400)


class HarshAccelerationConfig(HarshConfig):
    threshold_ms2: float = Field(default=3.5, gt=0, le=100)


class CrashConfig(RuleConfig):
    severity: Severity = "critical"
    accel_threshold_ms2: float = Field(default=30.0, gt=0, le=1000)
    use_device_alarm: bool = True
    clear_after_s: float = Field(default=60.0, ge=0, le=86_400)


class SosConfig(RuleConfig):
    severity: Severity = "critical"
    clear_after_s: float = Field(default=10.0, ge=0, le=86_400)


class DeviceAlarmConfig(RuleConfig):
    """A device alarm the telemetry carries (``alarms.tamper``, ``alarms.power_cut``)."""

    severity: Severity = "critical"
    clear_after_s: float = Field(default=60.0, ge=0, le=86_400)


class DtcConfig(RuleConfig):
    """Diagnostic trouble codes (``dtc_codes``, OBD-II): reported, and still reported after
    ``min_duration_s`` (a code that clears at once is a glitch, not a fault)."""

    min_duration_s: float = Field(default=10.0, ge=0, le=86_400)
    clear_after_s: float = Field(default=60.0, ge=0, le=86_400)


class ServiceDueConfig(RuleConfig):
    """The odometer past the last service (the registry's ``last_service_km``) plus the
    service interval: open until the registry records the next service."""

    severity: Severity = "info"
    interval_km: float = Field(default=15_000.0, gt=0, le=1_000_000)


class IdlingConfig(RuleConfig):
    severity: Severity = "info"
    max_speed_kmh: float = Field(default=2.0, ge=0, le=50)
    min_duration_s: float = Field(default=300.0, ge=0, le=86_400)


class OfflineConfig(_Model):
    enabled: bool = True
    severity: Severity = "warning"
    after_s: float = Field(default=600.0, gt=0, le=30 * 86_400)
    # How often the vehicles are scanned for silence (processing time).
    check_interval_s: float = Field(default=10.0, gt=0, le=3600)
    # A device clock this far from ingest's (a clock in 1970) is not believed: the event is
    # timed by its ingest time, so the next good event shows no decades-long silence.
    max_clock_skew_s: float = Field(default=7 * 86_400.0, gt=0)


class CollisionRiskConfig(RuleConfig):
    severity: Severity = "critical"
    ttc_s: float = Field(default=2.0, gt=0, le=60)
    hysteresis_s: float = Field(default=0.5, ge=0, le=60)
    min_closing_speed_ms: float = Field(default=0.5, ge=0, le=200)
    clear_after_s: float = Field(default=2.0, ge=0, le=86_400)


class Fence(_Model):
    name: str = Field(pattern=NAME_PATTERN)
    kind: Literal["keep_in", "keep_out"]
    polygon: list[tuple[float, float]] = Field(min_length=3, max_length=1000)  # [lat, lon]
    fleets: list[str] = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        return zone_name(name)

    @field_validator("polygon")
    @classmethod
    def _polygon(cls, polygon: list[tuple[float, float]]) -> list[tuple[float, float]]:
        return checked_polygon(polygon)


class GeofenceConfig(RuleConfig):
    min_duration_s: float = Field(default=5.0, ge=0, le=86_400)
    clear_after_s: float = Field(default=10.0, ge=0, le=86_400)
    fences: list[Fence] = Field(default_factory=list)

    @field_validator("fences")
    @classmethod
    def _unique(cls, fences: list[Fence]) -> list[Fence]:
        names = [f.name for f in fences]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"fence names must be unique: {', '.join(dupes)}")
        return fences


class TripConfig(_Model):
    enabled: bool = True
    start_speed_kmh: float = Field(default=5.0, gt=0, le=100)
    stop_speed_kmh: float = Field(default=2.0, ge=0, le=100)
    end_after_stop_s: float = Field(default=600.0, gt=0, le=86_400)
    end_on_ignition_off: bool = True
    max_gap_s: float = Field(default=600.0, gt=0, le=86_400)
    # A fix implying a faster move than this is a GPS jump, not distance driven.
    max_plausible_kmh: float = Field(default=300.0, gt=0, le=2000)


class DriverScoreConfig(_Model):
    enabled: bool = True
    window_s: float = Field(default=3600.0, gt=0, le=7 * 86_400)
    bucket_s: float = Field(default=600.0, gt=0, le=86_400)
    min_driving_s: float = Field(default=300.0, ge=0, le=86_400)
    speeding_weight: float = Field(default=50.0, ge=0, le=100)  # points at 100 % speeding
    harsh_event_weight: float = Field(default=5.0, ge=0, le=100)  # points per event per hour
    idle_weight: float = Field(default=10.0, ge=0, le=100)  # points at 100 % idling

    @model_validator(mode="after")
    def _buckets_fit(self) -> DriverScoreConfig:
        if self.bucket_s > self.window_s:
            raise ValueError("bucket_s must not exceed window_s")
        if self.window_s / self.bucket_s > 168:
            raise ValueError("window_s / bucket_s must be at most 168 buckets")
        return self


class Rules(_Model):
    """The whole rules file."""

    profile: Literal["seed", "realistic"] = "seed"
    speeding: SpeedingConfig = SpeedingConfig()
    low_fuel: LowFuelConfig = LowFuelConfig()
    overheating: OverheatingConfig = OverheatingConfig()
    low_battery: LowBatteryConfig = LowBatteryConfig()
    over_revving: OverRevvingConfig = OverRevvingConfig()
    gear_mismatch: GearMismatchConfig = GearMismatchConfig()
    harsh_braking: HarshConfig = HarshConfig()
    harsh_acceleration: HarshAccelerationConfig = HarshAccelerationConfig()
    crash: CrashConfig = CrashConfig()
    sos: SosConfig = SosConfig()
    tamper: DeviceAlarmConfig = DeviceAlarmConfig()
    power_cut: DeviceAlarmConfig = DeviceAlarmConfig()
    dtc: DtcConfig = DtcConfig()
    service_due: ServiceDueConfig = ServiceDueConfig()
    idling: IdlingConfig = IdlingConfig()
    offline: OfflineConfig = OfflineConfig()
    collision_risk: CollisionRiskConfig = CollisionRiskConfig()
    geofence: GeofenceConfig = GeofenceConfig()
    trips: TripConfig = TripConfig()
    driver_score: DriverScoreConfig = DriverScoreConfig()

    @model_validator(mode="before")
    @classmethod
    def _profile_defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict) or data.get("profile") != "realistic":
            return data
        for rule, key, value in REALISTIC_DEFAULTS:
            section = data.get(rule) or {}
            if isinstance(section, dict) and key not in section:
                data = {**data, rule: {**section, key: value}}
        return data

    @classmethod
    def parse(cls, doc: Any, *, source: str = "rules") -> Rules:
        if doc is None:
            doc = {}
        if not isinstance(doc, dict):
            raise ConfigError(f"{source}: expected a mapping of rule names to settings")
        try:
            return cls.model_validate(doc)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}"
                for err in exc.errors()
            )
            raise ConfigError(f"{source}: {problems}") from exc

    @classmethod
    def load(cls, path: Path) -> Rules:
        try:
            doc = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read rules file {path}: {exc}") from exc
        return cls.parse(doc, source=str(path))
