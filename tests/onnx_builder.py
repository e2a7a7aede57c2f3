"""Tiny ONNX models built with ``onnx.helper`` (tests only), returned as serialized bytes."""
import numpy as np

from src.export.model_info import onnx_package

onnx = onnx_package()  # the protobuf backend MindSpore needs, as export.py selects it
TensorProto, helper, numpy_helper = onnx.TensorProto, onnx.helper, onnx.numpy_helper


def _serialized(graph):
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)], ir_version=7,
                             producer_name="test").SerializeToString()


def with_metadata(model_bytes, entries):
    """``model_bytes`` with ``entries`` (str -> str) added to ``metadata_props``."""
    model = onnx.load_from_string(model_bytes)
    for key, value in entries.items():
        model.metadata_props.add(key=key, value=value)
    return model.SerializeToString()


def conv_transpose_model(weight, input_shape, output_shape_attribute, extra_input=False):
    """y = ConvTranspose(x, W), kernel 4, stride 2, pads 1, with the given ``output_shape``
    attribute (MindSpore 2.8 writes the full (N, C, H, W) shape there)."""
    n, _, h, w = input_shape
    node = helper.make_node("ConvTranspose", ["x", "W"], ["y"], kernel_shape=[4, 4], strides=[2, 2],
                            pads=[1, 1, 1, 1], output_shape=list(output_shape_attribute))
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, input_shape)]
    if extra_input:  # an initializer also listed as a graph input, as some exporters write it
        inputs.append(helper.make_tensor_value_info("W", TensorProto.FLOAT, weight.shape))
    graph = helper.make_graph(
        [node], "g", inputs,
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, (n, weight.shape[1], 2 * h, 2 * w))],
        initializer=[numpy_helper.from_array(np.asarray(weight, np.float32), "W")])
    return _serialized(graph)


def identity_model(shape, elem_type=TensorProto.FLOAT):
    """y = Identity(x), x and y of ``shape`` (a str dim is symbolic)."""
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", elem_type, shape)],
                              [helper.make_tensor_value_info("y", elem_type, shape)])
    return _serialized(graph)
