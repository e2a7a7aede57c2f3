"""The few ONNX protobuf fields this project reads and writes, without the ``onnx`` package.

An ONNX file is one serialized ``ModelProto`` (protobuf wire format: every field is a varint
tag ``number << 3 | wire_type`` followed by a varint, a fixed 4/8-byte value or a
length-prefixed byte string). Field numbers used here, from ``onnx/onnx.proto``:

    ModelProto       ir_version 1, graph 7, metadata_props 14 (repeated StringStringEntryProto)
    StringStringEntryProto   key 1, value 2
    GraphProto       node 1, initializer 5 (TensorProto: name 8), input 11, output 12
    NodeProto        op_type 4, attribute 5
    AttributeProto   name 1, ints 8 (repeated int64)
    ValueInfoProto   name 1, type 2 -> TypeProto tensor_type 1 -> elem_type 1, shape 2
    TensorShapeProto dim 1 -> Dimension dim_value 1, dim_param 2

Three jobs:

* ``read_signature`` / ``read_metadata``: graph inputs/outputs (name, element type, dims) and
  the ``metadata_props`` entries, read without building a session.
* ``with_metadata``: the model with extra ``metadata_props`` entries. A repeated field may be
  appended at the end of a message, so the entries are added without re-encoding the graph.
* ``fix_conv_transpose_output_shape``: MindSpore 2.8's exporter writes a ConvTranspose's
  ``output_shape`` attribute as the full (N, C, H, W) shape, which ONNX Runtime refuses
  ("Attribute output_shape has incorrect size"): ONNX wants the spatial dims only. The
  attribute is cut to its last ``len(kernel_shape)`` values; nothing else changes.
"""
VARINT, FIXED64, LENGTH, FIXED32 = 0, 1, 2, 5
FLOAT = 1  # TensorProto.DataType FLOAT

MODEL_GRAPH, MODEL_METADATA = 7, 14
GRAPH_NODE, GRAPH_INITIALIZER, GRAPH_INPUT, GRAPH_OUTPUT = 1, 5, 11, 12
NODE_OP_TYPE, NODE_ATTRIBUTE = 4, 5
ATTRIBUTE_NAME, ATTRIBUTE_INTS = 1, 8
TENSOR_NAME = 8


class ProtoError(ValueError):
    """The bytes are not a well-formed protobuf message of the expected shape."""


# ---------------------------------------------------------------- wire format

def _read_varint(buf, pos):
    value = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise ProtoError("truncated or overlong varint")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def _varint(value):
    value &= (1 << 64) - 1  # negative int64 values are written as 10-byte two's complement
    out = bytearray()
    while True:
        low = value & 0x7F
        value >>= 7
        if value:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def fields(buf):
    """Yield (number, wire_type, value) of a message; value: int (varint), bytes-like (others)."""
    buf = memoryview(buf)
    pos = 0
    while pos < len(buf):
        tag, pos = _read_varint(buf, pos)
        number, wire_type = tag >> 3, tag & 7
        if number == 0:
            raise ProtoError("field number 0")
        if wire_type == VARINT:
            value, pos = _read_varint(buf, pos)
        elif wire_type in (FIXED64, FIXED32):
            size = 8 if wire_type == FIXED64 else 4
            value, pos = buf[pos:pos + size], pos + size
        elif wire_type == LENGTH:
            size, pos = _read_varint(buf, pos)
            value, pos = buf[pos:pos + size], pos + size
        else:
            raise ProtoError(f"unsupported wire type {wire_type}")
        if pos > len(buf):
            raise ProtoError("field runs past the end of the message")
        yield number, wire_type, value


def encode_field(number, wire_type, value):
    """One field in wire format (the inverse of one item of :func:`fields`)."""
    tag = _varint(number << 3 | wire_type)
    if wire_type == VARINT:
        return tag + _varint(value)
    data = bytes(value)
    if wire_type == LENGTH:
        return tag + _varint(len(data)) + data
    return tag + data


def _encode_message(items):
    return b"".join(encode_field(*item) for item in items)


def _string_field(number, text):
    return encode_field(number, LENGTH, text.encode("utf-8"))


def _text(value):
    return bytes(value).decode("utf-8", errors="replace")


def _first(buf, number, default=None):
    return next((value for n, _, value in fields(buf) if n == number), default)


def _ints(buf, number):
    """A repeated int64 field, packed or not."""
    values = []
    for n, wire_type, value in fields(buf):
        if n != number:
            continue
        if wire_type == VARINT:
            values.append(value)
        else:  # packed
            pos = 0
            while pos < len(value):
                item, pos = _read_varint(value, pos)
                values.append(item)
    return [v - (1 << 64) if v >= 1 << 63 else v for v in values]


# ---------------------------------------------------------------- reading

def _graph(model):
    graph = _first(model, MODEL_GRAPH)
    if graph is None:
        raise ProtoError("no graph")
    return graph


def _value_info(info):
    """(name, elem_type, dims) of a ValueInfoProto; a symbolic dim is its name (str)."""
    name = _text(_first(info, 1, b""))
    tensor = _first(_first(info, 2, b""), 1, b"")
    elem_type = _first(tensor, 1, 0)
    dims = []
    for n, _, dim in fields(_first(tensor, 2, b"")):
        if n == 1:
            value = _first(dim, 1)
            dims.append(value if value is not None else _text(_first(dim, 2, b"?")))
    return name, elem_type, tuple(dims)


def read_signature(model):
    """(inputs, outputs) of the main graph, each a list of (name, elem_type, dims).

    Graph inputs that are initializers (weights listed as inputs by some exporters) are left out.
    """
    graph = _graph(model)
    initializers = {_text(_first(t, TENSOR_NAME, b"")) for n, _, t in fields(graph) if n == GRAPH_INITIALIZER}
    inputs = [_value_info(v) for n, _, v in fields(graph) if n == GRAPH_INPUT]
    outputs = [_value_info(v) for n, _, v in fields(graph) if n == GRAPH_OUTPUT]
    return [i for i in inputs if i[0] not in initializers], outputs


def read_metadata(model):
    """``metadata_props`` as a dict (the last value wins for a repeated key)."""
    entries = {}
    for n, wire_type, entry in fields(model):
        if n == MODEL_METADATA and wire_type == LENGTH:
            entries[_text(_first(entry, 1, b""))] = _text(_first(entry, 2, b""))
    return entries


# ---------------------------------------------------------------- writing

def with_metadata(model, entries):
    """``model`` bytes with ``entries`` (str -> str) appended to ``metadata_props``."""
    extra = b"".join(encode_field(MODEL_METADATA, LENGTH, _string_field(1, k) + _string_field(2, v))
                     for k, v in entries.items())
    return bytes(model) + extra


def _attribute_name(attribute):
    return _text(_first(attribute, ATTRIBUTE_NAME, b""))


def _fixed_conv_transpose(node):
    """A ConvTranspose NodeProto with ``output_shape`` cut to the spatial dims, or None if it is fine."""
    attributes = {_attribute_name(v): v for n, _, v in fields(node) if n == NODE_ATTRIBUTE}
    if "output_shape" not in attributes or "kernel_shape" not in attributes:
        return None
    spatial = len(_ints(attributes["kernel_shape"], ATTRIBUTE_INTS))
    shape = _ints(attributes["output_shape"], ATTRIBUTE_INTS)
    if len(shape) != spatial + 2:
        return None
    fixed = [item for item in fields(attributes["output_shape"]) if item[0] != ATTRIBUTE_INTS]
    fixed += [(ATTRIBUTE_INTS, VARINT, d) for d in shape[2:]]  # (N, C, H, W) -> (H, W)
    items = [(n, w, _encode_message(fixed) if n == NODE_ATTRIBUTE and _attribute_name(v) == "output_shape" else v)
             for n, w, v in fields(node)]
    return _encode_message(items)


def fix_conv_transpose_output_shape(model):
    """(model bytes, number of ConvTranspose nodes fixed); see the module docstring."""
    graph = _graph(model)
    count = 0
    graph_items = []
    for n, w, value in fields(graph):
        if n == GRAPH_NODE and _text(_first(value, NODE_OP_TYPE, b"")) == "ConvTranspose":
            fixed = _fixed_conv_transpose(value)
            if fixed is not None:
                value, count = fixed, count + 1
        graph_items.append((n, w, value))
    if not count:
        return bytes(model), 0
    new_graph = _encode_message(graph_items)
    items = [(n, w, new_graph if n == MODEL_GRAPH else v) for n, w, v in fields(model)]
    return _encode_message(items), count

