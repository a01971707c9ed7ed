from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class EpisodePhase(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EPISODE_PHASE_UNSPECIFIED: _ClassVar[EpisodePhase]
    EPISODE_PHASE_PENDING: _ClassVar[EpisodePhase]
    EPISODE_PHASE_OPEN: _ClassVar[EpisodePhase]
    EPISODE_PHASE_CLEARING: _ClassVar[EpisodePhase]
EPISODE_PHASE_UNSPECIFIED: EpisodePhase
EPISODE_PHASE_PENDING: EpisodePhase
EPISODE_PHASE_OPEN: EpisodePhase
EPISODE_PHASE_CLEARING: EpisodePhase

class EpisodeState(_message.Message):
    __slots__ = ("key", "phase", "since_us", "start_us", "peak", "last_update_us", "start_seq")
    KEY_FIELD_NUMBER: _ClassVar[int]
    PHASE_FIELD_NUMBER: _ClassVar[int]
    SINCE_US_FIELD_NUMBER: _ClassVar[int]
    START_US_FIELD_NUMBER: _ClassVar[int]
    PEAK_FIELD_NUMBER: _ClassVar[int]
    LAST_UPDATE_US_FIELD_NUMBER: _ClassVar[int]
    START_SEQ_FIELD_NUMBER: _ClassVar[int]
    key: str
    phase: EpisodePhase
    since_us: int
    start_us: int
    peak: float
    last_update_us: int
    start_seq: int
    def __init__(self, key: _Optional[str] = ..., phase: _Optional[_Union[EpisodePhase, str]] = ..., since_us: _Optional[int] = ..., start_us: _Optional[int] = ..., peak: _Optional[float] = ..., last_update_us: _Optional[int] = ..., start_seq: _Optional[int] = ...) -> None: ...

class TripProgress(_message.Message):
    __slots__ = ("start_us", "start_seq", "start_lat", "start_lon", "distance_km", "idle_s", "max_speed_kmh", "harsh_brakes", "harsh_accels", "speeding_s", "stopped_since_us", "stop_idle_s", "hint")
    START_US_FIELD_NUMBER: _ClassVar[int]
    START_SEQ_FIELD_NUMBER: _ClassVar[int]
    START_LAT_FIELD_NUMBER: _ClassVar[int]
    START_LON_FIELD_NUMBER: _ClassVar[int]
    DISTANCE_KM_FIELD_NUMBER: _ClassVar[int]
    IDLE_S_FIELD_NUMBER: _ClassVar[int]
    MAX_SPEED_KMH_FIELD_NUMBER: _ClassVar[int]
    HARSH_BRAKES_FIELD_NUMBER: _ClassVar[int]
    HARSH_ACCELS_FIELD_NUMBER: _ClassVar[int]
    SPEEDING_S_FIELD_NUMBER: _ClassVar[int]
    STOPPED_SINCE_US_FIELD_NUMBER: _ClassVar[int]
    STOP_IDLE_S_FIELD_NUMBER: _ClassVar[int]
    HINT_FIELD_NUMBER: _ClassVar[int]
    start_us: int
    start_seq: int
    start_lat: float
    start_lon: float
    distance_km: float
    idle_s: float
    max_speed_kmh: float
    harsh_brakes: int
    harsh_accels: int
    speeding_s: float
    stopped_since_us: int
    stop_idle_s: float
    hint: str
    def __init__(self, start_us: _Optional[int] = ..., start_seq: _Optional[int] = ..., start_lat: _Optional[float] = ..., start_lon: _Optional[float] = ..., distance_km: _Optional[float] = ..., idle_s: _Optional[float] = ..., max_speed_kmh: _Optional[float] = ..., harsh_brakes: _Optional[int] = ..., harsh_accels: _Optional[int] = ..., speeding_s: _Optional[float] = ..., stopped_since_us: _Optional[int] = ..., stop_idle_s: _Optional[float] = ..., hint: _Optional[str] = ...) -> None: ...

class ScoreBucket(_message.Message):
    __slots__ = ("start_us", "distance_km", "driving_s", "speeding_s", "harsh_brakes", "harsh_accels", "idle_s")
    START_US_FIELD_NUMBER: _ClassVar[int]
    DISTANCE_KM_FIELD_NUMBER: _ClassVar[int]
    DRIVING_S_FIELD_NUMBER: _ClassVar[int]
    SPEEDING_S_FIELD_NUMBER: _ClassVar[int]
    HARSH_BRAKES_FIELD_NUMBER: _ClassVar[int]
    HARSH_ACCELS_FIELD_NUMBER: _ClassVar[int]
    IDLE_S_FIELD_NUMBER: _ClassVar[int]
    start_us: int
    distance_km: float
    driving_s: float
    speeding_s: float
    harsh_brakes: int
    harsh_accels: int
    idle_s: float
    def __init__(self, start_us: _Optional[int] = ..., distance_km: _Optional[float] = ..., driving_s: _Optional[float] = ..., speeding_s: _Optional[float] = ..., harsh_brakes: _Optional[int] = ..., harsh_accels: _Optional[int] = ..., idle_s: _Optional[float] = ...) -> None: ...

class VehicleState(_message.Message):
    __slots__ = ("vehicle_id", "last_seq", "last_event_us", "last_seen_us", "input_partition", "fleet_id", "driver_id", "lat", "lon", "speed_kmh", "ignition", "episodes", "trip", "buckets")
    VEHICLE_ID_FIELD_NUMBER: _ClassVar[int]
    LAST_SEQ_FIELD_NUMBER: _ClassVar[int]
    LAST_EVENT_US_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_US_FIELD_NUMBER: _ClassVar[int]
    INPUT_PARTITION_FIELD_NUMBER: _ClassVar[int]
    FLEET_ID_FIELD_NUMBER: _ClassVar[int]
    DRIVER_ID_FIELD_NUMBER: _ClassVar[int]
    LAT_FIELD_NUMBER: _ClassVar[int]
    LON_FIELD_NUMBER: _ClassVar[int]
    SPEED_KMH_FIELD_NUMBER: _ClassVar[int]
    IGNITION_FIELD_NUMBER: _ClassVar[int]
    EPISODES_FIELD_NUMBER: _ClassVar[int]
    TRIP_FIELD_NUMBER: _ClassVar[int]
    BUCKETS_FIELD_NUMBER: _ClassVar[int]
    vehicle_id: str
    last_seq: int
    last_event_us: int
    last_seen_us: int
    input_partition: int
    fleet_id: str
    driver_id: str
    lat: float
    lon: float
    speed_kmh: float
    ignition: bool
    episodes: _containers.RepeatedCompositeFieldContainer[EpisodeState]
    trip: TripProgress
    buckets: _containers.RepeatedCompositeFieldContainer[ScoreBucket]
    def __init__(self, vehicle_id: _Optional[str] = ..., last_seq: _Optional[int] = ..., last_event_us: _Optional[int] = ..., last_seen_us: _Optional[int] = ..., input_partition: _Optional[int] = ..., fleet_id: _Optional[str] = ..., driver_id: _Optional[str] = ..., lat: _Optional[float] = ..., lon: _Optional[float] = ..., speed_kmh: _Optional[float] = ..., ignition: _Optional[bool] = ..., episodes: _Optional[_Iterable[_Union[EpisodeState, _Mapping]]] = ..., trip: _Optional[_Union[TripProgress, _Mapping]] = ..., buckets: _Optional[_Iterable[_Union[ScoreBucket, _Mapping]]] = ...) -> None: ...
