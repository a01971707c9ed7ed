"""The protobuf wire format by hand, for the hot paths that do not go through the runtime.

Ingest appends fields to the bytes a client sent, enrichment splices the raw telemetry into its
output, detection packs vehicle state with ``struct`` and the load generator writes whole ticks
with numpy: each writes the standard encoding itself because building a message per event costs
microseconds. What they share is here: varints, field tags and length-delimited fields.

A tag is ``(field number << 3) | wire type``. It is computed from the generated descriptors, so
a field's number is said once, in its ``.proto``, and a renumbered or retyped field changes
every hand encoder with it. Callers compute their tags once, into module constants, never per
event.
"""

from __future__ import annotations

from typing import cast

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

# Wire types (https://protobuf.dev/programming-guides/encoding/#structure).
VARINT = 0
I64 = 1
LEN = 2
I32 = 5

_WIRE_TYPES = {
    FieldDescriptor.TYPE_DOUBLE: I64,
    FieldDescriptor.TYPE_FIXED64: I64,
    FieldDescriptor.TYPE_SFIXED64: I64,
    FieldDescriptor.TYPE_FLOAT: I32,
    FieldDescriptor.TYPE_FIXED32: I32,
    FieldDescriptor.TYPE_SFIXED32: I32,
    FieldDescriptor.TYPE_INT32: VARINT,
    FieldDescriptor.TYPE_INT64: VARINT,
    FieldDescriptor.TYPE_UINT32: VARINT,
    FieldDescriptor.TYPE_UINT64: VARINT,
    FieldDescriptor.TYPE_SINT32: VARINT,
    FieldDescriptor.TYPE_SINT64: VARINT,
    FieldDescriptor.TYPE_BOOL: VARINT,
    FieldDescriptor.TYPE_ENUM: VARINT,
    FieldDescriptor.TYPE_STRING: LEN,
    FieldDescriptor.TYPE_BYTES: LEN,
    FieldDescriptor.TYPE_MESSAGE: LEN,
}


def field_of(message: type[Message] | Descriptor, name: str) -> FieldDescriptor:
    """The descriptor of field ``name`` of ``message`` (a generated class or its descriptor)."""
    # The runtime's (upb) descriptors pass for these classes (DescriptorMetaclass); the stubs
    # type them apart.
    descriptor = (
        message if isinstance(message, Descriptor) else cast(Descriptor, message.DESCRIPTOR)
    )
    try:
        return descriptor.fields_by_name[name]
    except KeyError:
        raise ValueError(f"{descriptor.full_name} has no field {name!r}") from None


def tag_value(message: type[Message] | Descriptor, name: str) -> int:
    """``(field number << 3) | wire type`` of field ``name`` of ``message``."""
    field = field_of(message, name)
    wire_type = _WIRE_TYPES.get(field.type)
    # A packed repeated scalar is one delimited run, not one tag per value. No hand encoder
    # writes them, so no tag is offered.
    if wire_type is None or field.is_packed:
        raise ValueError(f"{field.full_name}: no single-value wire tag for this field type")
    return (field.number << 3) | wire_type


def tag(message: type[Message] | Descriptor, name: str) -> bytes:
    """Field ``name``'s tag as it precedes the field's value on the wire."""
    return varint(tag_value(message, name))


def tag_byte(message: type[Message] | Descriptor, name: str) -> int:
    """Field ``name``'s tag when a caller needs it as one byte (field numbers 1 to 15).

    For scanners that compare a byte with it and ``struct`` formats that pack it as ``B``: a
    field renumbered past 15 fails here, at import, not as corrupt output.
    """
    value = tag_value(message, name)
    if value > 0x7F:
        raise ValueError(f"the tag of {field_of(message, name).full_name} takes two bytes")
    return value


def varint(value: int) -> bytes:
    """A non-negative integer as a protobuf varint (seven bits a byte, low bits first)."""
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def delimited(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field: ``tag``, the payload's length, the payload."""
    n = len(payload)
    return tag + bytes((n,)) + payload if n < 0x80 else tag + varint(n) + payload


def read_varint(data: bytes, pos: int) -> tuple[int, int]:
    """The varint at ``data[pos]`` and the position after it. IndexError when truncated."""
    value = data[pos]
    pos += 1
    if value < 0x80:
        return value, pos
    value &= 0x7F
    shift = 7
    while True:
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos
        shift += 7


def skip_field(data: bytes, pos: int, wire_type: int) -> int:
    """The position after the value at ``data[pos]`` of a field of ``wire_type``.

    ValueError for the deprecated group wire types (3, 4) and for unknown ones; IndexError when
    a varint runs off the end. A fixed-width or delimited value that does so returns a position
    past the end: the caller compares it with the length.
    """
    if wire_type == VARINT:
        return read_varint(data, pos)[1]
    if wire_type == I64:
        return pos + 8
    if wire_type == I32:
        return pos + 4
    if wire_type == LEN:
        n, pos = read_varint(data, pos)
        return pos + n
    raise ValueError(f"wire type {wire_type} is not read here")
