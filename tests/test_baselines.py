"""Tests of the trivial baselines."""
import numpy as np
import pytest

from src.baselines import predict_baseline


def _inputs():
    rng = np.random.default_rng(0)
    return rng.random((3, 10, 1, 16, 16)).astype(np.float64)


def test_zeros_shape_dtype_values():
    out = predict_baseline("zeros", _inputs(), 7)
    assert out.shape == (3, 7, 1, 16, 16) and out.dtype == np.float32
    assert not out.any()


def test_copy_last_repeats_the_last_input_frame():
    x = _inputs()
    out = predict_baseline("copy_last", x, 4)
    assert out.shape == (3, 4, 1, 16, 16) and out.dtype == np.float32
    for t in range(4):
        np.testing.assert_array_equal(out[:, t], x[:, -1].astype(np.float32))
    assert not np.array_equal(out[:, 0], x[:, -2].astype(np.float32))
    out[0, 0, 0, 0, 0] = 5.0  # writable, independent copy
    assert out[0, 1, 0, 0, 0] != 5.0 and x.max() <= 1.0


def test_four_dimensional_inputs_keep_their_layout():
    out = predict_baseline("copy_last", _inputs()[:, :, 0], 2)
    assert out.shape == (3, 2, 16, 16)


def test_several_channels_are_kept():
    x = np.random.default_rng(0).random((2, 4, 3, 8, 12)).astype(np.float32)  # (B, T_in, C, H, W)
    out = predict_baseline("copy_last", x, 5)
    assert out.shape == (2, 5, 3, 8, 12)
    np.testing.assert_array_equal(out[:, 4], x[:, -1])
    assert predict_baseline("zeros", x, 2).shape == (2, 2, 3, 8, 12)


@pytest.mark.parametrize("kind,shape,frames,match", [
    ("mean", (3, 10, 1, 16, 16), 10, "unknown baseline"),
    ("zeros", (10, 1, 16, 16, 1, 1), 10, "expected shape"),
    ("copy_last", (3, 0, 1, 16, 16), 10, "at least one"),
    ("zeros", (3, 10, 1, 16, 16), 0, "positive integer"),
])
def test_bad_arguments_raise_value_error(kind, shape, frames, match):
    with pytest.raises(ValueError, match=match):
        predict_baseline(kind, np.zeros(shape), frames)
