from fleetpipe.pb.v1 import telemetry_pb2 as _telemetry_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Severity(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SEVERITY_UNSPECIFIED: _ClassVar[Severity]
    SEVERITY_INFO: _ClassVar[Severity]
    SEVERITY_WARNING: _ClassVar[Severity]
    SEVERITY_CRITICAL: _ClassVar[Severity]

class AlertState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ALERT_STATE_UNSPECIFIED: _ClassVar[AlertState]
    ALERT_STATE_OPEN: _ClassVar[AlertState]
    ALERT_STATE_UPDATE: _ClassVar[AlertState]
    ALERT_STATE_RESOLVED: _ClassVar[AlertState]
SEVERITY_UNSPECIFIED: Severity
SEVERITY_INFO: Severity
SEVERITY_WARNING: Severity
SEVERITY_CRITICAL: Severity
ALERT_STATE_UNSPECIFIED: AlertState
ALERT_STATE_OPEN: AlertState
ALERT_STATE_UPDATE: AlertState
ALERT_STATE_RESOLVED: AlertState

class Alert(_message.Message):
    __slots__ = ("alert_id", "vehicle_id", "fleet_id", "driver_id", "rule", "severity", "state", "episode_start_us", "episode_end_us", "values", "event_time_us", "ingest_time_us", "detected_time_us", "seq", "location", "message", "geohash6")
    class ValuesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    ALERT_ID_FIELD_NUMBER: _ClassVar[int]
    VEHICLE_ID_FIELD_NUMBER: _ClassVar[int]
    FLEET_ID_FIELD_NUMBER: _ClassVar[int]
    DRIVER_ID_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    SEVERITY_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    EPISODE_START_US_FIELD_NUMBER: _ClassVar[int]
    EPISODE_END_US_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    EVENT_TIME_US_FIELD_NUMBER: _ClassVar[int]
    INGEST_TIME_US_FIELD_NUMBER: _ClassVar[int]
    DETECTED_TIME_US_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    GEOHASH6_FIELD_NUMBER: _ClassVar[int]
    alert_id: str
    vehicle_id: str
    fleet_id: str
    driver_id: str
    rule: str
    severity: Severity
    state: AlertState
    episode_start_us: int
    episode_end_us: int
    values: _containers.ScalarMap[str, float]
    event_time_us: int
    ingest_time_us: int
    detected_time_us: int
    seq: int
    location: _telemetry_pb2.Location
    message: str
    geohash6: str
    def __init__(self, alert_id: _Optional[str] = ..., vehicle_id: _Optional[str] = ..., fleet_id: _Optional[str] = ..., driver_id: _Optional[str] = ..., rule: _Optional[str] = ..., severity: _Optional[_Union[Severity, str]] = ..., state: _Optional[_Union[AlertState, str]] = ..., episode_start_us: _Optional[int] = ..., episode_end_us: _Optional[int] = ..., values: _Optional[_Mapping[str, float]] = ..., event_time_us: _Optional[int] = ..., ingest_time_us: _Optional[int] = ..., detected_time_us: _Optional[int] = ..., seq: _Optional[int] = ..., location: _Optional[_Union[_telemetry_pb2.Location, _Mapping]] = ..., message: _Optional[str] = ..., geohash6: _Optional[str] = ...) -> None: ...
