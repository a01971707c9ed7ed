from fleetpipe.pb.v1 import telemetry_pb2 as _telemetry_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class VehicleInfo(_message.Message):
    __slots__ = ("fleet_id", "vehicle_type", "model", "driver_id", "driver_name", "speed_profile", "electric", "last_service_km")
    FLEET_ID_FIELD_NUMBER: _ClassVar[int]
    VEHICLE_TYPE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    DRIVER_ID_FIELD_NUMBER: _ClassVar[int]
    DRIVER_NAME_FIELD_NUMBER: _ClassVar[int]
    SPEED_PROFILE_FIELD_NUMBER: _ClassVar[int]
    ELECTRIC_FIELD_NUMBER: _ClassVar[int]
    LAST_SERVICE_KM_FIELD_NUMBER: _ClassVar[int]
    fleet_id: str
    vehicle_type: str
    model: str
    driver_id: str
    driver_name: str
    speed_profile: str
    electric: bool
    last_service_km: float
    def __init__(self, fleet_id: _Optional[str] = ..., vehicle_type: _Optional[str] = ..., model: _Optional[str] = ..., driver_id: _Optional[str] = ..., driver_name: _Optional[str] = ..., speed_profile: _Optional[str] = ..., electric: _Optional[bool] = ..., last_service_km: _Optional[float] = ...) -> None: ...

class EnrichedTelemetry(_message.Message):
    __slots__ = ("telemetry", "vehicle", "geohash6", "speed_limit_kmh", "expected_gear", "known", "enriched_time_us", "zone_limit_kmh", "vehicle_limit_kmh")
    TELEMETRY_FIELD_NUMBER: _ClassVar[int]
    VEHICLE_FIELD_NUMBER: _ClassVar[int]
    GEOHASH6_FIELD_NUMBER: _ClassVar[int]
    SPEED_LIMIT_KMH_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_GEAR_FIELD_NUMBER: _ClassVar[int]
    KNOWN_FIELD_NUMBER: _ClassVar[int]
    ENRICHED_TIME_US_FIELD_NUMBER: _ClassVar[int]
    ZONE_LIMIT_KMH_FIELD_NUMBER: _ClassVar[int]
    VEHICLE_LIMIT_KMH_FIELD_NUMBER: _ClassVar[int]
    telemetry: _telemetry_pb2.Telemetry
    vehicle: VehicleInfo
    geohash6: str
    speed_limit_kmh: float
    expected_gear: int
    known: bool
    enriched_time_us: int
    zone_limit_kmh: float
    vehicle_limit_kmh: float
    def __init__(self, telemetry: _Optional[_Union[_telemetry_pb2.Telemetry, _Mapping]] = ..., vehicle: _Optional[_Union[VehicleInfo, _Mapping]] = ..., geohash6: _Optional[str] = ..., speed_limit_kmh: _Optional[float] = ..., expected_gear: _Optional[int] = ..., known: _Optional[bool] = ..., enriched_time_us: _Optional[int] = ..., zone_limit_kmh: _Optional[float] = ..., vehicle_limit_kmh: _Optional[float] = ...) -> None: ...
