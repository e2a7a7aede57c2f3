"""Trivial predictors that give the floor any trained model has to beat.

* ``zeros``: predict empty (black) frames. On Moving MNIST its MSE is the energy of the
  target digits, so a model near this number has learnt to output blank frames.
* ``copy_last``: repeat the last observed frame. A model near this number has learnt
  to copy instead of extrapolating the motion.
"""
import numpy as np

from src.config import BASELINES


def predict_baseline(kind, inputs, output_frames):
    """Baseline prediction for a batch of observed frames.

    inputs: (B, T_in, C, H, W) (or (B, T_in, H, W)), values in [0, 1].
    Returns float32 (B, output_frames, C, H, W) (same layout as ``inputs``).
    """
    if kind not in BASELINES:
        raise ValueError(f"unknown baseline {kind!r}; choose one of {', '.join(BASELINES)}")
    if isinstance(output_frames, bool) or not isinstance(output_frames, (int, np.integer)) \
            or output_frames < 1:
        raise ValueError(f"output_frames must be a positive integer, got {output_frames!r}")
    x = np.asarray(inputs)
    if x.ndim not in (4, 5):
        raise ValueError(
            f"inputs: expected shape (B, T_in, C, H, W) or (B, T_in, H, W), got {x.shape}")
    if x.shape[1] == 0:
        raise ValueError(f"inputs: need at least one observed frame, got shape {x.shape}")
    out_shape = (x.shape[0], int(output_frames)) + x.shape[2:]
    if kind == "zeros":
        return np.zeros(out_shape, dtype=np.float32)
    last = x[:, -1:].astype(np.float32)  # (B, 1, [C,] H, W)
    return np.ascontiguousarray(np.broadcast_to(last, out_shape))
