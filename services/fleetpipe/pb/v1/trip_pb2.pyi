from fleetpipe.pb.v1 import telemetry_pb2 as _telemetry_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TripState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TRIP_STATE_UNSPECIFIED: _ClassVar[TripState]
    TRIP_STATE_STARTED: _ClassVar[TripState]
    TRIP_STATE_ENDED: _ClassVar[TripState]
TRIP_STATE_UNSPECIFIED: TripState
TRIP_STATE_STARTED: TripState
TRIP_STATE_ENDED: TripState

class Trip(_message.Message):
    __slots__ = ("trip_id", "vehicle_id", "fleet_id", "driver_id", "state", "start_time_us", "end_time_us", "start_location", "end_location", "distance_km", "duration_s", "idle_s", "max_speed_kmh", "avg_speed_kmh", "harsh_brakes", "harsh_accels", "speeding_s", "start_seq", "end_seq")
    TRIP_ID_FIELD_NUMBER: _ClassVar[int]
    VEHICLE_ID_FIELD_NUMBER: _ClassVar[int]
    FLEET_ID_FIELD_NUMBER: _ClassVar[int]
    DRIVER_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    START_TIME_US_FIELD_NUMBER: _ClassVar[int]
    END_TIME_US_FIELD_NUMBER: _ClassVar[int]
    START_LOCATION_FIELD_NUMBER: _ClassVar[int]
    END_LOCATION_FIELD_NUMBER: _ClassVar[int]
    DISTANCE_KM_FIELD_NUMBER: _ClassVar[int]
    DURATION_S_FIELD_NUMBER: _ClassVar[int]
    IDLE_S_FIELD_NUMBER: _ClassVar[int]
    MAX_SPEED_KMH_FIELD_NUMBER: _ClassVar[int]
    AVG_SPEED_KMH_FIELD_NUMBER: _ClassVar[int]
    HARSH_BRAKES_FIELD_NUMBER: _ClassVar[int]
    HARSH_ACCELS_FIELD_NUMBER: _ClassVar[int]
    SPEEDING_S_FIELD_NUMBER: _ClassVar[int]
    START_SEQ_FIELD_NUMBER: _ClassVar[int]
    END_SEQ_FIELD_NUMBER: _ClassVar[int]
    trip_id: str
    vehicle_id: str
    fleet_id: str
    driver_id: str
    state: TripState
    start_time_us: int
    end_time_us: int
    start_location: _telemetry_pb2.Location
    end_location: _telemetry_pb2.Location
    distance_km: float
    duration_s: float
    idle_s: float
    max_speed_kmh: float
    avg_speed_kmh: float
    harsh_brakes: int
    harsh_accels: int
    speeding_s: float
    start_seq: int
    end_seq: int
    def __init__(self, trip_id: _Optional[str] = ..., vehicle_id: _Optional[str] = ..., fleet_id: _Optional[str] = ..., driver_id: _Optional[str] = ..., state: _Optional[_Union[TripState, str]] = ..., start_time_us: _Optional[int] = ..., end_time_us: _Optional[int] = ..., start_location: _Optional[_Union[_telemetry_pb2.Location, _Mapping]] = ..., end_location: _Optional[_Union[_telemetry_pb2.Location, _Mapping]] = ..., distance_km: _Optional[float] = ..., duration_s: _Optional[float] = ..., idle_s: _Optional[float] = ..., max_speed_kmh: _Optional[float] = ..., avg_speed_kmh: _Optional[float] = ..., harsh_brakes: _Optional[int] = ..., harsh_accels: _Optional[int] = ..., speeding_s: _Optional[float] = ..., start_seq: _Optional[int] = ..., end_seq: _Optional[int] = ...) -> None: ...

class DriverScore(_message.Message):
    __slots__ = ("driver_id", "vehicle_id", "fleet_id", "window_start_us", "window_end_us", "score", "distance_km", "driving_s", "speeding_s", "harsh_brakes", "harsh_accels", "idle_s", "computed_time_us")
    DRIVER_ID_FIELD_NUMBER: _ClassVar[int]
    VEHICLE_ID_FIELD_NUMBER: _ClassVar[int]
    FLEET_ID_FIELD_NUMBER: _ClassVar[int]
    WINDOW_START_US_FIELD_NUMBER: _ClassVar[int]
    WINDOW_END_US_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    DISTANCE_KM_FIELD_NUMBER: _ClassVar[int]
    DRIVING_S_FIELD_NUMBER: _ClassVar[int]
    SPEEDING_S_FIELD_NUMBER: _ClassVar[int]
    HARSH_BRAKES_FIELD_NUMBER: _ClassVar[int]
    HARSH_ACCELS_FIELD_NUMBER: _ClassVar[int]
    IDLE_S_FIELD_NUMBER: _ClassVar[int]
    COMPUTED_TIME_US_FIELD_NUMBER: _ClassVar[int]
    driver_id: str
    vehicle_id: str
    fleet_id: str
    window_start_us: int
    window_end_us: int
    score: float
    distance_km: float
    driving_s: float
    speeding_s: float
    harsh_brakes: int
    harsh_accels: int
    idle_s: float
    computed_time_us: int
    def __init__(self, driver_id: _Optional[str] = ..., vehicle_id: _Optional[str] = ..., fleet_id: _Optional[str] = ..., window_start_us: _Optional[int] = ..., window_end_us: _Optional[int] = ..., score: _Optional[float] = ..., distance_km: _Optional[float] = ..., driving_s: _Optional[float] = ..., speeding_s: _Optional[float] = ..., harsh_brakes: _Optional[int] = ..., harsh_accels: _Optional[int] = ..., idle_s: _Optional[float] = ..., computed_time_us: _Optional[int] = ...) -> None: ...
