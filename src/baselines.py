"""Trivial predictors that give the floor any trained model has to beat.

* ``zeros``: black frames; a model near its MSE has learnt to output blank frames.
* ``copy_last``: persistence; a model near it copies instead of extrapolating the motion.
* ``extrapolation``: Lagrangian persistence, the nowcaster's baseline (Shi et al. 2015: ROVER): the last two
  frames' per-channel optical flow (skimage ``optical_flow_ilk``), held constant; lead frame k samples the
  last frame at ``r - k * flow(r)`` (``transform.warp``, bilinear, 0 outside the frame).
"""
import numpy as np

from src.config import BASELINES


def predict_baseline(kind, inputs, output_frames):
    """inputs (B, T_in, C, H, W) or (B, T_in, H, W) in [0, 1] -> float32 (B, output_frames, ...) alike."""
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
    out_shape = (x.shape[0], int(output_frames)) + x.shape[2:]
    if kind == "zeros":
        return np.zeros(out_shape, dtype=np.float32)
    if kind == "extrapolation":
        frames = x if x.ndim == 5 else x[:, :, None]  # (B, T_in, C, H, W)
        return extrapolate(frames, int(output_frames)).reshape(out_shape)
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
