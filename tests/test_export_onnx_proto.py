"""src/export/onnx_proto.py on ONNX models built here field by field (no onnx package)."""
import numpy as np
import pytest

from src.export import onnx_proto as proto
from src.export.onnx_proto import LENGTH, VARINT, encode_field
from tests.onnx_builder import conv_transpose_model, model, value_info


def numpy_conv_transpose(x, weight, stride=2, pad=1):
    """ONNX ConvTranspose by its definition: y[o, i*s + a - p, j*s + b - p] += x[c, i, j] * W[c, o, a, b]."""
    n, _, h, w = x.shape
    k = weight.shape[2]
    full = np.zeros((n, weight.shape[1], (h - 1) * stride + k, (w - 1) * stride + k))
    for i in range(h):
        for j in range(w):
            full[:, :, i * stride:i * stride + k, j * stride:j * stride + k] += np.einsum(
                "nc,coab->noab", x[:, :, i, j], weight)
    return full[:, :, pad:pad + h * stride, pad:pad + w * stride]


def test_varints_round_trip_including_negative_int64():
    for value in (0, 1, 127, 128, 300, 2 ** 40, -1, -(2 ** 40)):
        encoded = encode_field(3, VARINT, value)
        [(number, wire_type, decoded)] = list(proto.fields(encoded))
        assert (number, wire_type) == (3, VARINT)
        assert proto._ints(encoded, 3) == [value]
    packed = encode_field(8, LENGTH, b"".join(proto._varint(v) for v in (5, 300, 2)))
    assert proto._ints(packed, 8) == [5, 300, 2]


@pytest.mark.parametrize("damaged", [b"\x0a\x05abc", b"\xff\xff\xff", b"\x0b\x00", b"\x00\x01"])
def test_damaged_messages_raise_proto_error(damaged):
    with pytest.raises(proto.ProtoError):
        list(proto.fields(damaged))


def test_metadata_is_appended_and_read_back():
    plain = conv_transpose_model(np.ones((2, 3, 4, 4), np.float32), (1, 2, 3, 3), [3, 3])
    assert proto.read_metadata(plain) == {}
    tagged = proto.with_metadata(plain, {"config": "arch: paper\nhidden: [4]\n", "ünïcode": "välue"})
    assert tagged.startswith(plain)  # appended: the graph bytes are not rewritten
    assert proto.read_metadata(tagged) == {"config": "arch: paper\nhidden: [4]\n", "ünïcode": "välue"}


def test_signature_leaves_out_initializers_and_keeps_symbolic_dims():
    with_weight_input = conv_transpose_model(np.ones((2, 3, 4, 4), np.float32), (1, 2, 3, 3), [6, 6],
                                             extra_input=True)
    inputs, outputs = proto.read_signature(with_weight_input)
    assert inputs == [("x", proto.FLOAT, (1, 2, 3, 3))]
    assert outputs == [("y", proto.FLOAT, (1, 3, 6, 6))]
    symbolic = model(encode_field(11, LENGTH, value_info("x", ("batch", 10))))
    assert proto.read_signature(symbolic)[0] == [("x", proto.FLOAT, ("batch", 10))]


def test_conv_transpose_output_shape_is_cut_to_the_spatial_dims():
    """ONNX Runtime refuses MindSpore's 4-d output_shape; after the fix it computes the
    transposed convolution of its definition."""
    import onnxruntime as ort

    rng = np.random.default_rng(0)
    weight = rng.standard_normal((2, 3, 4, 4)).astype(np.float32)  # (C_in, C_out, kH, kW)
    x = rng.standard_normal((1, 2, 3, 3)).astype(np.float32)
    broken = conv_transpose_model(weight, x.shape, [1, 3, 6, 6])
    with pytest.raises(Exception, match="output_shape"):
        ort.InferenceSession(broken, providers=["CPUExecutionProvider"])
    fixed, count = proto.fix_conv_transpose_output_shape(broken)
    assert count == 1
    session = ort.InferenceSession(fixed, providers=["CPUExecutionProvider"])
    got = session.run(None, {"x": x})[0]
    np.testing.assert_allclose(got, numpy_conv_transpose(x, weight), rtol=1e-5, atol=1e-5)
    again, count = proto.fix_conv_transpose_output_shape(fixed)  # nothing left to fix
    assert count == 0 and again == fixed
