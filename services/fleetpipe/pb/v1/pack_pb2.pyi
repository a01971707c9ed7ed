from fleetpipe.pb.v1 import enriched_pb2 as _enriched_pb2
from fleetpipe.pb.v1 import telemetry_pb2 as _telemetry_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PackedTrace(_message.Message):
    __slots__ = ("index", "traceparent", "tracestate")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    TRACEPARENT_FIELD_NUMBER: _ClassVar[int]
    TRACESTATE_FIELD_NUMBER: _ClassVar[int]
    index: int
    traceparent: str
    tracestate: str
    def __init__(self, index: _Optional[int] = ..., traceparent: _Optional[str] = ..., tracestate: _Optional[str] = ...) -> None: ...

class TelemetryPack(_message.Message):
    __slots__ = ("events", "traces")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    TRACES_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[_telemetry_pb2.Telemetry]
    traces: _containers.RepeatedCompositeFieldContainer[PackedTrace]
    def __init__(self, events: _Optional[_Iterable[_Union[_telemetry_pb2.Telemetry, _Mapping]]] = ..., traces: _Optional[_Iterable[_Union[PackedTrace, _Mapping]]] = ...) -> None: ...

class EnrichedPack(_message.Message):
    __slots__ = ("events", "traces")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    TRACES_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[_enriched_pb2.EnrichedTelemetry]
    traces: _containers.RepeatedCompositeFieldContainer[PackedTrace]
    def __init__(self, events: _Optional[_Iterable[_Union[_enriched_pb2.EnrichedTelemetry, _Mapping]]] = ..., traces: _Optional[_Iterable[_Union[PackedTrace, _Mapping]]] = ...) -> None: ...
