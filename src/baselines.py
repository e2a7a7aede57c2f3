"""Trivial predictors that give the floor any trained model has to beat.

* ``zeros``: black frames; a model near its MSE has learnt to output blank frames.
* ``copy_last``: persistence; a model near it copies instead of extrapolating the motion.
* ``extrapolation``: Lagrangian persistence, the nowcaster's baseline (Shi et al. 2015: ROVER): the last two
  frames' per-channel optical flow (skimage ``optical_flow_ilk``), held constant; lead frame k samples the
  last frame at ``r - k * flow(r)`` (``transform.warp``, bilinear, 0 outside the frame).
* ``pysteps``: the nowcasting field's reference extrapolation, from pysteps (optional,
  requirements-pysteps.txt): Lucas-Kanade motion (``motion.get_method("LK")``: OpenCV's pyramidal tracker on
  corner features, vectors interpolated over the grid) from the last 3 observed frames, and semi-Lagrangian
  backward advection of the last frame along it (``extrapolation.get_method("semilagrangian")``; trajectories
  follow the motion field, so they curve where it turns).
"""
import contextlib
import io

import numpy as np

from src.config import BASELINES
from src.data.sequences import target_frames
from src.errors import UserError


class BaselineUnavailable(UserError):
    """The optional package a baseline runs on is not installed."""


def predict_baseline(kind, inputs, output_frames, channels=()):
    """inputs (B, T_in, C, H, W) or (B, T_in, H, W) in [0, 1] -> float32 (B, output_frames, ...) alike, of the
    ``channels`` (target_channels: indices into C; empty: all) only, as the network they are compared with."""
    if kind not in BASELINES:
        raise ValueError(f"unknown baseline {kind!r}; choose one of {', '.join(BASELINES)}")
    if isinstance(output_frames, bool) or not isinstance(output_frames, (int, np.integer)) \
            or output_frames < 1:
        raise ValueError(f"output_frames must be a positive integer, got {output_frames!r}")
    x = np.asarray(inputs)
    if x.ndim not in (4, 5):
        raise ValueError(f"inputs: expected shape (B, T_in, C, H, W) or (B, T_in, H, W), got {x.shape}")
    if x.shape[1] == 0:
        raise ValueError(f"inputs: need at least one observed frame, got shape {x.shape}")
    if x.ndim == 5:
        x = target_frames(x, channels)  # (B, T_in, C_out, H, W)
    out_shape = (x.shape[0], int(output_frames)) + x.shape[2:]
    if kind == "zeros":
        return np.zeros(out_shape, dtype=np.float32)
    if kind in ("extrapolation", "pysteps"):
        frames = x if x.ndim == 5 else x[:, :, None]  # (B, T_in, C, H, W)
        advect = extrapolate if kind == "extrapolation" else pysteps_extrapolate
        return advect(frames, int(output_frames)).reshape(out_shape)
    last = x[:, -1:].astype(np.float32)  # (B, 1, [C,] H, W)
    return np.ascontiguousarray(np.broadcast_to(last, out_shape))


FLOW_RADIUS = 7  # optical_flow_ilk's window radius in pixels (its default)


def motion_field(previous, last):
    """(rows, cols) displacement per frame step of ``previous`` -> ``last`` ((H, W) each), in pixels:
    what sits at r in ``previous`` sits at r + flow(r) in ``last``."""
    from skimage.registration import optical_flow_ilk

    return optical_flow_ilk(previous.astype(np.float32), last.astype(np.float32), radius=FLOW_RADIUS)


def extrapolate(inputs, output_frames):
    """The ``extrapolation`` baseline: (B, T_in, C, H, W) -> (B, output_frames, C, H, W) float32."""
    from skimage.transform import warp

    if inputs.shape[1] < 2:
        raise ValueError(f"the extrapolation baseline needs at least 2 observed frames, got {inputs.shape[1]}")
    batch, _, channels, height, width = inputs.shape
    rows, cols = np.meshgrid(np.arange(height, dtype=np.float32), np.arange(width, dtype=np.float32),
                             indexing="ij")  # (H, W) each
    out = np.empty((batch, output_frames, channels, height, width), dtype=np.float32)
    for b in range(batch):
        for c in range(channels):
            last = inputs[b, -1, c].astype(np.float32)  # (H, W)
            flow_rows, flow_cols = motion_field(inputs[b, -2, c], last)
            for k in range(1, output_frames + 1):
                coords = np.stack([rows - k * flow_rows, cols - k * flow_cols])  # (2, H, W) where to sample
                out[b, k - 1, c] = warp(last, coords, order=1, mode="constant", cval=0.0, preserve_range=True)
    return out


PYSTEPS_MOTION_FRAMES = 3  # observed frames pysteps' Lucas-Kanade motion is estimated from (2 frame pairs)
NO_ECHO = 0.0  # the normalised value of data_min: what enters from outside the frame


def pysteps_methods():
    """pysteps' (Lucas-Kanade motion, semi-Lagrangian extrapolation), imported on first use; BaselineUnavailable
    in one line naming requirements-pysteps.txt when pysteps or the OpenCV its Lucas-Kanade runs is missing."""
    try:
        import cv2  # noqa: F401  (pysteps finds it missing only in the middle of the first forecast)
        with contextlib.redirect_stdout(io.StringIO()):  # pysteps prints where it found its config file
            from pysteps import extrapolation, motion
    except ImportError as err:
        raise BaselineUnavailable(
            f"the pysteps baseline needs pysteps and OpenCV ({err.name or 'a package'} is not installed); install "
            "them with `python -m pip install -r requirements-pysteps.txt`") from None
    return motion.get_method("LK"), extrapolation.get_method("semilagrangian")


def pysteps_extrapolate(inputs, output_frames):
    """The ``pysteps`` baseline: (B, T_in, C, H, W) in [0, 1] -> (B, output_frames, C, H, W) float32.

    The values are advected as they come, normalised: for dBZ data (``data_scale minmax``) they are an affine
    map of dBZ, i.e. already in decibels, which is how pysteps extrapolates (rain rates go to dBR first), with
    the no-echo value 0 (= ``data_min``) for what enters from outside. Its Lucas-Kanade rescales each frame to
    0..255 by itself and bilinear interpolation commutes with the affine map, so the forecast is the dBZ
    forecast mapped to [0, 1]. Each channel gets its own motion."""
    lucas_kanade, semilagrangian = pysteps_methods()
    if inputs.shape[1] < 2:
        raise ValueError(f"the pysteps baseline needs at least 2 observed frames, got {inputs.shape[1]}")
    batch, _, channels, height, width = inputs.shape
    out = np.empty((batch, output_frames, channels, height, width), dtype=np.float32)
    for b in range(batch):
        for c in range(channels):
            recent = inputs[b, -PYSTEPS_MOTION_FRAMES:, c].astype(np.float64)  # (<= 3, H, W)
            velocity = lucas_kanade(recent)  # (2, H, W): columns (x) then rows (y), px per frame step
            out[b, :, c] = semilagrangian(recent[-1], velocity, output_frames, outval=NO_ECHO)  # (T_out, H, W)
    return out
