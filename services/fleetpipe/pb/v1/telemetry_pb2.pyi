from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ObjectClass(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OBJECT_CLASS_UNSPECIFIED: _ClassVar[ObjectClass]
    OBJECT_CLASS_VEHICLE: _ClassVar[ObjectClass]
    OBJECT_CLASS_PEDESTRIAN: _ClassVar[ObjectClass]
    OBJECT_CLASS_CYCLIST: _ClassVar[ObjectClass]
    OBJECT_CLASS_OBSTACLE: _ClassVar[ObjectClass]

class DrivingEventKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DRIVING_EVENT_KIND_UNSPECIFIED: _ClassVar[DrivingEventKind]
    DRIVING_EVENT_KIND_INTERVENTION: _ClassVar[DrivingEventKind]
    DRIVING_EVENT_KIND_DISENGAGEMENT: _ClassVar[DrivingEventKind]
OBJECT_CLASS_UNSPECIFIED: ObjectClass
OBJECT_CLASS_VEHICLE: ObjectClass
OBJECT_CLASS_PEDESTRIAN: ObjectClass
OBJECT_CLASS_CYCLIST: ObjectClass
OBJECT_CLASS_OBSTACLE: ObjectClass
DRIVING_EVENT_KIND_UNSPECIFIED: DrivingEventKind
DRIVING_EVENT_KIND_INTERVENTION: DrivingEventKind
DRIVING_EVENT_KIND_DISENGAGEMENT: DrivingEventKind

class Location(_message.Message):
    __slots__ = ("lat", "lon", "altitude_m", "accuracy_m", "heading_deg")
    LAT_FIELD_NUMBER: _ClassVar[int]
    LON_FIELD_NUMBER: _ClassVar[int]
    ALTITUDE_M_FIELD_NUMBER: _ClassVar[int]
    ACCURACY_M_FIELD_NUMBER: _ClassVar[int]
    HEADING_DEG_FIELD_NUMBER: _ClassVar[int]
    lat: float
    lon: float
    altitude_m: float
    accuracy_m: float
    heading_deg: float
    def __init__(self, lat: _Optional[float] = ..., lon: _Optional[float] = ..., altitude_m: _Optional[float] = ..., accuracy_m: _Optional[float] = ..., heading_deg: _Optional[float] = ...) -> None: ...

class Motion(_message.Message):
    __slots__ = ("speed_kmh", "accel_x_ms2", "accel_y_ms2", "accel_z_ms2")
    SPEED_KMH_FIELD_NUMBER: _ClassVar[int]
    ACCEL_X_MS2_FIELD_NUMBER: _ClassVar[int]
    ACCEL_Y_MS2_FIELD_NUMBER: _ClassVar[int]
    ACCEL_Z_MS2_FIELD_NUMBER: _ClassVar[int]
    speed_kmh: float
    accel_x_ms2: float
    accel_y_ms2: float
    accel_z_ms2: float
    def __init__(self, speed_kmh: _Optional[float] = ..., accel_x_ms2: _Optional[float] = ..., accel_y_ms2: _Optional[float] = ..., accel_z_ms2: _Optional[float] = ...) -> None: ...

class Engine(_message.Message):
    __slots__ = ("rpm", "gear", "fuel_pct", "coolant_temp_c", "ignition")
    RPM_FIELD_NUMBER: _ClassVar[int]
    GEAR_FIELD_NUMBER: _ClassVar[int]
    FUEL_PCT_FIELD_NUMBER: _ClassVar[int]
    COOLANT_TEMP_C_FIELD_NUMBER: _ClassVar[int]
    IGNITION_FIELD_NUMBER: _ClassVar[int]
    rpm: int
    gear: int
    fuel_pct: float
    coolant_temp_c: float
    ignition: bool
    def __init__(self, rpm: _Optional[int] = ..., gear: _Optional[int] = ..., fuel_pct: _Optional[float] = ..., coolant_temp_c: _Optional[float] = ..., ignition: _Optional[bool] = ...) -> None: ...

class Battery(_message.Message):
    __slots__ = ("pct", "voltage", "charging")
    PCT_FIELD_NUMBER: _ClassVar[int]
    VOLTAGE_FIELD_NUMBER: _ClassVar[int]
    CHARGING_FIELD_NUMBER: _ClassVar[int]
    pct: float
    voltage: float
    charging: bool
    def __init__(self, pct: _Optional[float] = ..., voltage: _Optional[float] = ..., charging: _Optional[bool] = ...) -> None: ...

class DeviceAlarms(_message.Message):
    __slots__ = ("sos", "crash", "tamper", "power_cut")
    SOS_FIELD_NUMBER: _ClassVar[int]
    CRASH_FIELD_NUMBER: _ClassVar[int]
    TAMPER_FIELD_NUMBER: _ClassVar[int]
    POWER_CUT_FIELD_NUMBER: _ClassVar[int]
    sos: bool
    crash: bool
    tamper: bool
    power_cut: bool
    def __init__(self, sos: _Optional[bool] = ..., crash: _Optional[bool] = ..., tamper: _Optional[bool] = ..., power_cut: _Optional[bool] = ...) -> None: ...

class Perception(_message.Message):
    __slots__ = ("nearest_object_class", "nearest_object_distance_m", "closing_speed_ms")
    NEAREST_OBJECT_CLASS_FIELD_NUMBER: _ClassVar[int]
    NEAREST_OBJECT_DISTANCE_M_FIELD_NUMBER: _ClassVar[int]
    CLOSING_SPEED_MS_FIELD_NUMBER: _ClassVar[int]
    nearest_object_class: ObjectClass
    nearest_object_distance_m: float
    closing_speed_ms: float
    def __init__(self, nearest_object_class: _Optional[_Union[ObjectClass, str]] = ..., nearest_object_distance_m: _Optional[float] = ..., closing_speed_ms: _Optional[float] = ...) -> None: ...

class DrivingEvent(_message.Message):
    __slots__ = ("kind", "reason")
    KIND_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    kind: DrivingEventKind
    reason: str
    def __init__(self, kind: _Optional[_Union[DrivingEventKind, str]] = ..., reason: _Optional[str] = ...) -> None: ...

class Telemetry(_message.Message):
    __slots__ = ("vehicle_id", "seq", "event_time_us", "ingest_time_us", "fleet_id", "location", "motion", "engine", "battery", "trip_hint", "odometer_km", "dtc_codes", "alarms", "perception", "driving_events", "late", "dropped_fields")
    VEHICLE_ID_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    EVENT_TIME_US_FIELD_NUMBER: _ClassVar[int]
    INGEST_TIME_US_FIELD_NUMBER: _ClassVar[int]
    FLEET_ID_FIELD_NUMBER: _ClassVar[int]
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    MOTION_FIELD_NUMBER: _ClassVar[int]
    ENGINE_FIELD_NUMBER: _ClassVar[int]
    BATTERY_FIELD_NUMBER: _ClassVar[int]
    TRIP_HINT_FIELD_NUMBER: _ClassVar[int]
    ODOMETER_KM_FIELD_NUMBER: _ClassVar[int]
    DTC_CODES_FIELD_NUMBER: _ClassVar[int]
    ALARMS_FIELD_NUMBER: _ClassVar[int]
    PERCEPTION_FIELD_NUMBER: _ClassVar[int]
    DRIVING_EVENTS_FIELD_NUMBER: _ClassVar[int]
    LATE_FIELD_NUMBER: _ClassVar[int]
    DROPPED_FIELDS_FIELD_NUMBER: _ClassVar[int]
    vehicle_id: str
    seq: int
    event_time_us: int
    ingest_time_us: int
    fleet_id: str
    location: Location
    motion: Motion
    engine: Engine
    battery: Battery
    trip_hint: str
    odometer_km: float
    dtc_codes: _containers.RepeatedScalarFieldContainer[str]
    alarms: DeviceAlarms
    perception: Perception
    driving_events: _containers.RepeatedCompositeFieldContainer[DrivingEvent]
    late: bool
    dropped_fields: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, vehicle_id: _Optional[str] = ..., seq: _Optional[int] = ..., event_time_us: _Optional[int] = ..., ingest_time_us: _Optional[int] = ..., fleet_id: _Optional[str] = ..., location: _Optional[_Union[Location, _Mapping]] = ..., motion: _Optional[_Union[Motion, _Mapping]] = ..., engine: _Optional[_Union[Engine, _Mapping]] = ..., battery: _Optional[_Union[Battery, _Mapping]] = ..., trip_hint: _Optional[str] = ..., odometer_km: _Optional[float] = ..., dtc_codes: _Optional[_Iterable[str]] = ..., alarms: _Optional[_Union[DeviceAlarms, _Mapping]] = ..., perception: _Optional[_Union[Perception, _Mapping]] = ..., driving_events: _Optional[_Iterable[_Union[DrivingEvent, _Mapping]]] = ..., late: _Optional[bool] = ..., dropped_fields: _Optional[_Iterable[str]] = ...) -> None: ...
