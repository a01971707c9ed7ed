from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class FleetKpi(_message.Message):
    __slots__ = ("window_start_us", "window_end_us", "fleet_id", "dimension", "dimension_value", "source_partition", "active_vehicles", "distance_km", "max_speed_kmh", "speed_sum_kmh", "speed_samples", "alerts_by_rule")
    class AlertsByRuleEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    WINDOW_START_US_FIELD_NUMBER: _ClassVar[int]
    WINDOW_END_US_FIELD_NUMBER: _ClassVar[int]
    FLEET_ID_FIELD_NUMBER: _ClassVar[int]
    DIMENSION_FIELD_NUMBER: _ClassVar[int]
    DIMENSION_VALUE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_PARTITION_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_VEHICLES_FIELD_NUMBER: _ClassVar[int]
    DISTANCE_KM_FIELD_NUMBER: _ClassVar[int]
    MAX_SPEED_KMH_FIELD_NUMBER: _ClassVar[int]
    SPEED_SUM_KMH_FIELD_NUMBER: _ClassVar[int]
    SPEED_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    ALERTS_BY_RULE_FIELD_NUMBER: _ClassVar[int]
    window_start_us: int
    window_end_us: int
    fleet_id: str
    dimension: str
    dimension_value: str
    source_partition: int
    active_vehicles: int
    distance_km: float
    max_speed_kmh: float
    speed_sum_kmh: float
    speed_samples: int
    alerts_by_rule: _containers.ScalarMap[str, int]
    def __init__(self, window_start_us: _Optional[int] = ..., window_end_us: _Optional[int] = ..., fleet_id: _Optional[str] = ..., dimension: _Optional[str] = ..., dimension_value: _Optional[str] = ..., source_partition: _Optional[int] = ..., active_vehicles: _Optional[int] = ..., distance_km: _Optional[float] = ..., max_speed_kmh: _Optional[float] = ..., speed_sum_kmh: _Optional[float] = ..., speed_samples: _Optional[int] = ..., alerts_by_rule: _Optional[_Mapping[str, int]] = ...) -> None: ...

class KpiPane(_message.Message):
    __slots__ = ("start_us", "samples", "speed_sum_kmh", "speed_max_kmh", "odometer_min_km", "odometer_max_km", "alerts")
    class AlertsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    START_US_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    SPEED_SUM_KMH_FIELD_NUMBER: _ClassVar[int]
    SPEED_MAX_KMH_FIELD_NUMBER: _ClassVar[int]
    ODOMETER_MIN_KM_FIELD_NUMBER: _ClassVar[int]
    ODOMETER_MAX_KM_FIELD_NUMBER: _ClassVar[int]
    ALERTS_FIELD_NUMBER: _ClassVar[int]
    start_us: int
    samples: int
    speed_sum_kmh: float
    speed_max_kmh: float
    odometer_min_km: float
    odometer_max_km: float
    alerts: _containers.ScalarMap[str, int]
    def __init__(self, start_us: _Optional[int] = ..., samples: _Optional[int] = ..., speed_sum_kmh: _Optional[float] = ..., speed_max_kmh: _Optional[float] = ..., odometer_min_km: _Optional[float] = ..., odometer_max_km: _Optional[float] = ..., alerts: _Optional[_Mapping[str, int]] = ...) -> None: ...

class KpiVehicle(_message.Message):
    __slots__ = ("vehicle_id", "fleet_id", "model", "vehicle_type", "partition", "panes")
    VEHICLE_ID_FIELD_NUMBER: _ClassVar[int]
    FLEET_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    VEHICLE_TYPE_FIELD_NUMBER: _ClassVar[int]
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    PANES_FIELD_NUMBER: _ClassVar[int]
    vehicle_id: str
    fleet_id: str
    model: str
    vehicle_type: str
    partition: int
    panes: _containers.RepeatedCompositeFieldContainer[KpiPane]
    def __init__(self, vehicle_id: _Optional[str] = ..., fleet_id: _Optional[str] = ..., model: _Optional[str] = ..., vehicle_type: _Optional[str] = ..., partition: _Optional[int] = ..., panes: _Optional[_Iterable[_Union[KpiPane, _Mapping]]] = ...) -> None: ...

class KpiTopicMark(_message.Message):
    __slots__ = ("topic", "newest_event_us")
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    NEWEST_EVENT_US_FIELD_NUMBER: _ClassVar[int]
    topic: str
    newest_event_us: int
    def __init__(self, topic: _Optional[str] = ..., newest_event_us: _Optional[int] = ...) -> None: ...

class KpiPartition(_message.Message):
    __slots__ = ("partition", "next_end_us", "marks")
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    NEXT_END_US_FIELD_NUMBER: _ClassVar[int]
    MARKS_FIELD_NUMBER: _ClassVar[int]
    partition: int
    next_end_us: int
    marks: _containers.RepeatedCompositeFieldContainer[KpiTopicMark]
    def __init__(self, partition: _Optional[int] = ..., next_end_us: _Optional[int] = ..., marks: _Optional[_Iterable[_Union[KpiTopicMark, _Mapping]]] = ...) -> None: ...

class KpiState(_message.Message):
    __slots__ = ("vehicle", "partition")
    VEHICLE_FIELD_NUMBER: _ClassVar[int]
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    vehicle: KpiVehicle
    partition: KpiPartition
    def __init__(self, vehicle: _Optional[_Union[KpiVehicle, _Mapping]] = ..., partition: _Optional[_Union[KpiPartition, _Mapping]] = ...) -> None: ...
