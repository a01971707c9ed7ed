from fleetpipe.pb.v1 import telemetry_pb2 as _telemetry_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RejectCode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REJECT_CODE_UNSPECIFIED: _ClassVar[RejectCode]
    REJECT_CODE_MISSING_FIELD: _ClassVar[RejectCode]
    REJECT_CODE_OUT_OF_RANGE: _ClassVar[RejectCode]
    REJECT_CODE_MALFORMED: _ClassVar[RejectCode]
    REJECT_CODE_FUTURE_EVENT: _ClassVar[RejectCode]
    REJECT_CODE_NOT_FLEET_VEHICLE: _ClassVar[RejectCode]
REJECT_CODE_UNSPECIFIED: RejectCode
REJECT_CODE_MISSING_FIELD: RejectCode
REJECT_CODE_OUT_OF_RANGE: RejectCode
REJECT_CODE_MALFORMED: RejectCode
REJECT_CODE_FUTURE_EVENT: RejectCode
REJECT_CODE_NOT_FLEET_VEHICLE: RejectCode

class TelemetryBatch(_message.Message):
    __slots__ = ("batch_id", "events")
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    batch_id: int
    events: _containers.RepeatedCompositeFieldContainer[_telemetry_pb2.Telemetry]
    def __init__(self, batch_id: _Optional[int] = ..., events: _Optional[_Iterable[_Union[_telemetry_pb2.Telemetry, _Mapping]]] = ...) -> None: ...

class Rejection(_message.Message):
    __slots__ = ("index", "code", "field", "reason")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    index: int
    code: RejectCode
    field: str
    reason: str
    def __init__(self, index: _Optional[int] = ..., code: _Optional[_Union[RejectCode, str]] = ..., field: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class PublishAck(_message.Message):
    __slots__ = ("batch_id", "accepted", "rejected", "late")
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    LATE_FIELD_NUMBER: _ClassVar[int]
    batch_id: int
    accepted: int
    rejected: _containers.RepeatedCompositeFieldContainer[Rejection]
    late: int
    def __init__(self, batch_id: _Optional[int] = ..., accepted: _Optional[int] = ..., rejected: _Optional[_Iterable[_Union[Rejection, _Mapping]]] = ..., late: _Optional[int] = ...) -> None: ...
