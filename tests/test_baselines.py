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


def _translating_blobs(velocity, frames=15, size=64):
    """Two Gaussian blobs (sigma 4 px) moving at a constant ``velocity`` (rows, cols per frame):
    (T, H, W) float32 in [0, 1]."""
    rows, cols = np.mgrid[:size, :size]

    def blob(r, c):
        return np.exp(-((rows - r) ** 2 + (cols - c) ** 2) / (2 * 4.0 ** 2))

    vr, vc = velocity
    return np.stack([np.maximum(blob(24 + vr * t, 40 + vc * t), blob(40 + vr * t, 22 + vc * t))
                     for t in range(frames)]).astype(np.float32)


def _pixel_sum_mse(pred, target):
    return float(((pred - target) ** 2).sum(axis=(-3, -2, -1)).mean())


@pytest.mark.parametrize("velocity", [(1.5, -2.0), (0.5, 1.0), (-1.0, 0.0)])
def test_extrapolation_follows_a_constant_motion(velocity):
    """Measured: the estimated motion is within 0.02 px of the true velocity on the blobs, and the
    advected forecast's MSE is 120-29,000x below persistence's (the bar: 50x)."""
    from src.baselines import motion_field

    frames = _translating_blobs(velocity)[None, :, None]  # (1, T, 1, H, W)
    inputs, targets = frames[:, :5], frames[:, 5:]
    flow_rows, flow_cols = motion_field(inputs[0, -2, 0], inputs[0, -1, 0])
    on_blobs = inputs[0, -1, 0] > 0.5
    assert np.abs(flow_rows[on_blobs] - velocity[0]).max() < 0.05
    assert np.abs(flow_cols[on_blobs] - velocity[1]).max() < 0.05
    extrapolated = predict_baseline("extrapolation", inputs, 10)
    assert extrapolated.shape == targets.shape and extrapolated.dtype == np.float32
    persistence = predict_baseline("copy_last", inputs, 10)
    assert _pixel_sum_mse(extrapolated, targets) * 50 < _pixel_sum_mse(persistence, targets)


def test_extrapolation_moves_each_channel_with_its_own_motion():
    channels = np.stack([_translating_blobs((1.0, 0.0)), _translating_blobs((0.0, -1.5))], axis=1)  # (T, 2, H, W)
    inputs, targets = channels[None, :5], channels[None, 5:]
    extrapolated = predict_baseline("extrapolation", inputs, 10)
    for c in range(2):
        assert _pixel_sum_mse(extrapolated[:, :, c:c + 1], targets[:, :, c:c + 1]) < 1.0
    swapped = extrapolated[:, :, ::-1]  # a mix-up of the channels' motions would score like this
    assert _pixel_sum_mse(swapped, targets) > 50.0


def test_extrapolation_needs_two_observed_frames():
    with pytest.raises(ValueError, match="at least 2 observed frames"):
        predict_baseline("extrapolation", np.zeros((1, 1, 1, 8, 8), np.float32), 3)


# ---------------------------------------------------------------- pysteps' extrapolation (optional package)

def _needs_pysteps():
    pytest.importorskip("cv2", reason="pysteps' Lucas-Kanade needs OpenCV (requirements-pysteps.txt)")
    pytest.importorskip("pysteps", reason="optional: requirements-pysteps.txt")


def _translating_texture(shift, frames=15, size=64, seed=0):
    """A smooth random echo field cut from a larger canvas at a window moving by ``shift`` (rows, cols; whole
    pixels) per frame: an exact translation, with new echo entering at the upstream borders. (T, H, W) in [0, 1]."""
    from scipy.ndimage import gaussian_filter

    margin = max(abs(s) for s in shift) * frames + 1
    canvas = gaussian_filter(np.random.default_rng(seed).random((size + 2 * margin,) * 2), 3.0)
    canvas = np.clip((canvas - canvas.mean()) / canvas.std() * 0.25 + 0.3, 0.0, 1.0)  # some zero: no echo
    # the content moves by +shift per frame, so the window moves by -shift over the canvas
    windows = [canvas[margin - t * shift[0]:margin - t * shift[0] + size,
                      margin - t * shift[1]:margin - t * shift[1] + size] for t in range(frames)]  # (H, W) each
    return np.stack(windows).astype(np.float32)


@pytest.mark.parametrize("shift", [(2, -1), (0, 2), (-1, -1)])
def test_pysteps_recovers_a_translation(shift):
    """Lucas-Kanade finds the shift (rows and columns not swapped), and every lead frame away from the inflow
    borders is the last frame rolled by lead x shift (to a bilinear interpolation's rounding), far closer than
    persistence."""
    _needs_pysteps()
    from src.baselines import pysteps_methods

    frames = _translating_texture(shift, size=96)[None, :, None]  # (1, T, 1, H, W)
    inputs, last = frames[:, :5], frames[0, 4, 0]
    lucas_kanade, _ = pysteps_methods()
    velocity = lucas_kanade(inputs[0, -3:, 0].astype(np.float64))  # (2, H, W): columns, rows
    assert np.median(velocity[0]) == pytest.approx(shift[1], abs=0.1)
    assert np.median(velocity[1]) == pytest.approx(shift[0], abs=0.1)
    forecast = predict_baseline("pysteps", inputs, 10)
    assert forecast.shape == (1, 10, 1, 96, 96) and forecast.dtype == np.float32
    for lead in (1, 5, 10):
        inner = slice(4 + lead * 2, 92 - lead * 2)  # away from what entered across the borders
        rolled = np.roll(last, (lead * shift[0], lead * shift[1]), axis=(0, 1))[inner, inner]
        error = np.abs(forecast[0, lead - 1, 0][inner, inner] - rolled).mean()
        still = np.abs(last[inner, inner] - rolled).mean()
        assert error < 0.02 and error * 10 < still, (lead, error, still)  # measured: at most 0.009


def test_pysteps_keeps_the_baseline_contract():
    """Shapes (with and without a channel axis), float32, [0, 1], each channel its own motion."""
    _needs_pysteps()
    channels = np.stack([_translating_texture((1, 0)), _translating_texture((0, -2), seed=1)], axis=1)  # (T, 2, H, W)
    inputs, targets = channels[None, :5], channels[None, 5:]
    out = predict_baseline("pysteps", np.concatenate([inputs, inputs]), 3)
    assert out.shape == (2, 3, 2, 64, 64) and out.dtype == np.float32 and 0.0 <= out.min() and out.max() <= 1.0
    np.testing.assert_array_equal(out[0], out[1])
    assert predict_baseline("pysteps", inputs[:, :, 0], 3).shape == (1, 3, 64, 64)
    inner = (slice(None), slice(None), slice(None), slice(16, 48), slice(16, 48))
    good = np.abs(out[:1] - targets[:, :3])[inner].mean()
    swapped = np.abs(out[:1, :, ::-1] - targets[:, :3])[inner].mean()  # a mix-up of the channels' motions
    assert good * 5 < swapped


def test_pysteps_needs_two_observed_frames():
    _needs_pysteps()
    with pytest.raises(ValueError, match="at least 2 observed frames"):
        predict_baseline("pysteps", np.zeros((1, 1, 1, 8, 8), np.float32), 3)


@pytest.mark.parametrize("missing", ["pysteps", "cv2"])
def test_missing_pysteps_is_one_line_naming_the_requirements_file(monkeypatch, missing):
    """Without pysteps (or the OpenCV its Lucas-Kanade runs) the baseline fails in one line, as a user error."""
    import sys

    from src.baselines import BaselineUnavailable
    from src.errors import UserError

    monkeypatch.setitem(sys.modules, missing, None)  # import of it now raises ImportError
    with pytest.raises(BaselineUnavailable) as caught:
        predict_baseline("pysteps", np.zeros((1, 3, 1, 8, 8), np.float32), 2)
    message = str(caught.value)
    assert isinstance(caught.value, UserError) and "\n" not in message
    assert "requirements-pysteps.txt" in message and missing in message


@pytest.mark.parametrize("kind", ["zeros", "copy_last", "extrapolation"])
def test_baselines_predict_the_target_channels_only(kind):
    """target_channels [0, 2]: each baseline predicts those channels of the inputs,
    as it predicts them from a file holding them alone."""
    x = np.random.default_rng(1).random((2, 4, 3, 8, 12)).astype(np.float32)  # (B, T_in, C, H, W)
    out = predict_baseline(kind, x, 3, channels=(0, 2))
    assert out.shape == (2, 3, 2, 8, 12)
    np.testing.assert_allclose(out, predict_baseline(kind, x[:, :, [0, 2]], 3), atol=1e-6)
    if kind == "copy_last":
        np.testing.assert_array_equal(out[:, 2], x[:, -1, [0, 2]])
