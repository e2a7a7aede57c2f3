"""Tiny ONNX models built field by field with src.export.onnx_proto (tests only; no onnx package).

Field numbers: see the docstring of src/export/onnx_proto.py.
"""
import numpy as np

from src.export import onnx_proto as proto
from src.export.onnx_proto import LENGTH, VARINT, encode_field

INTS = 7  # AttributeProto.AttributeType INTS


def message(*parts):
    return b"".join(parts)


def string_field(number, text):
    return encode_field(number, LENGTH, text.encode())


def value_info(name, dims, elem_type=proto.FLOAT):
    """ValueInfoProto of a tensor; a str dim is symbolic (dim_param)."""
    dim_fields = [encode_field(1, LENGTH, encode_field(1, VARINT, d) if isinstance(d, int) else string_field(2, d))
                  for d in dims]
    tensor = encode_field(1, VARINT, elem_type) + encode_field(2, LENGTH, b"".join(dim_fields))
    return message(string_field(1, name), encode_field(2, LENGTH, encode_field(1, LENGTH, tensor)))


def ints_attribute(name, values):
    return message(string_field(1, name), encode_field(20, VARINT, INTS),
                   *[encode_field(8, VARINT, v) for v in values])


def initializer(name, array):
    dims = b"".join(encode_field(1, VARINT, d) for d in array.shape)
    return message(dims, encode_field(2, VARINT, proto.FLOAT), string_field(8, name),
                   encode_field(9, LENGTH, np.ascontiguousarray(array, dtype="<f4").tobytes()))


def model(graph):
    """ModelProto: IR version 7, opset 11, the given GraphProto bytes."""
    return message(encode_field(1, VARINT, 7), string_field(2, "test"), encode_field(7, LENGTH, graph),
                   encode_field(8, LENGTH, encode_field(2, VARINT, 11)))


def conv_transpose_model(weight, input_shape, output_shape_attribute, extra_input=False):
    """y = ConvTranspose(x, W), kernel 4, stride 2, pads 1, with the given ``output_shape``
    attribute (MindSpore 2.8 writes the full (N, C, H, W) shape there)."""
    n, _, h, w = input_shape
    attributes = (("kernel_shape", [4, 4]), ("strides", [2, 2]), ("pads", [1, 1, 1, 1]),
                  ("output_shape", output_shape_attribute))
    node = message(string_field(1, "x"), string_field(1, "W"), string_field(2, "y"), string_field(4, "ConvTranspose"),
                   *[encode_field(5, LENGTH, ints_attribute(k, v)) for k, v in attributes])
    inputs = [encode_field(11, LENGTH, value_info("x", input_shape))]
    if extra_input:  # an initializer also listed as a graph input, as some exporters write it
        inputs.append(encode_field(11, LENGTH, value_info("W", weight.shape)))
    output = encode_field(12, LENGTH, value_info("y", (n, weight.shape[1], 2 * h, 2 * w)))
    return model(message(encode_field(1, LENGTH, node), string_field(2, "g"),
                         encode_field(5, LENGTH, initializer("W", weight)), *inputs, output))


def identity_model(shape, elem_type=proto.FLOAT):
    """y = Identity(x), x and y of ``shape`` (a str dim is symbolic)."""
    node = message(string_field(1, "x"), string_field(2, "y"), string_field(4, "Identity"))
    return model(message(encode_field(1, LENGTH, node), string_field(2, "g"),
                         encode_field(11, LENGTH, value_info("x", shape, elem_type)),
                         encode_field(12, LENGTH, value_info("y", shape, elem_type))))
