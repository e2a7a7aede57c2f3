"""Video-prediction metrics for Moving MNIST, as used by the field's benchmark.

This module is the single metrics implementation: train-time validation, ``eval.py``,
the post-processing of Ascend 310 outputs and the tests all call it, so every number
the repository reports has the same definition.

Definitions (per sequence and per predicted frame, pixels in [0, 1]):

* predictions are clipped to [0, 1] first (targets must already be in [0, 1]);
* ``mse``  = SUM over the frame's pixels of (pred - true)^2   (4096 pixels for 64x64);
* ``mae``  = SUM over the frame's pixels of |pred - true|;
* ``ssim`` = ``skimage.metrics.structural_similarity(pred, true, data_range=1.0)`` on the
  float64 frame (7x7 uniform window, scikit-image defaults). The explicit data range
  matters: old scikit-image silently used 2.0 for float input, which inflates SSIM;
* ``psnr`` = -10 * log10(mean pixel squared error) in dB. A perfect frame would give
  +inf, so the mean squared error is clamped at ``PSNR_MSE_FLOOR`` = 1e-10, which caps
  PSNR at ``PSNR_CAP_DB`` = 100 dB and keeps averages finite.

Averages are means over all sequences and predicted frames; the per-frame curves are
means over sequences, one value per predicted frame (frames 11..20 for 10 -> 10).

Note that mse/mae are pixel SUMS, not means: a frame MSE of 29.8 is a mean squared
error of 29.8 / 4096 per pixel.
"""
import math

import numpy as np
from skimage.metrics import structural_similarity

METRIC_NAMES = ("mse", "mae", "ssim", "psnr")
PSNR_MSE_FLOOR = 1e-10
PSNR_CAP_DB = -10.0 * math.log10(PSNR_MSE_FLOOR)  # 100 dB
SSIM_DATA_RANGE = 1.0
# Targets are allowed to exceed [0, 1] by float rounding only.
_TARGET_TOLERANCE = 1e-4


def as_frames(array, name):
    """Return ``array`` as float64 (B, T, H, W); accepts (B, T, 1, H, W) or (B, T, H, W)."""
    arr = np.asarray(array)
    if arr.ndim == 5:
        if arr.shape[2] != 1:
            raise ValueError(
                f"{name}: expected one channel in (B, T, 1, H, W), got shape {arr.shape}")
        arr = arr[:, :, 0]
    elif arr.ndim != 4:
        raise ValueError(
            f"{name}: expected shape (B, T, 1, H, W) or (B, T, H, W), got {arr.shape}")
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)
            or arr.dtype == np.bool_):
        raise ValueError(f"{name}: expected a numeric array, got dtype {arr.dtype}")
    return arr.astype(np.float64, copy=False)


def _check_pair(pred, target):
    """Convert and validate one batch; return float64 (B, T, H, W) pred (clipped) and target."""
    p = as_frames(pred, "pred")
    t = as_frames(target, "target")
    if p.shape != t.shape:
        raise ValueError(
            f"pred and target shapes differ: pred {np.shape(pred)} vs target {np.shape(target)} "
            "(both must be (B, T, 1, H, W) or (B, T, H, W) with the same B, T, H, W)")
    if p.size and not np.isfinite(p).all():
        raise ValueError("pred contains NaN or infinite values (did training diverge?)")
    if t.size:
        if not np.isfinite(t).all():
            raise ValueError("target contains NaN or infinite values")
        lo, hi = float(t.min()), float(t.max())
        if lo < -_TARGET_TOLERANCE or hi > 1.0 + _TARGET_TOLERANCE:
            raise ValueError(
                f"target values must lie in [0, 1], got [{lo:g}, {hi:g}] "
                "(uint8 frames must be divided by 255 first)")
    return np.clip(p, 0.0, 1.0), t


def frame_metrics(pred, target):
    """Per-sequence, per-frame metrics of one batch.

    pred, target: (B, T, 1, H, W) or (B, T, H, W), pixels in [0, 1] (pred is clipped).
    Returns a dict metric name -> float64 array (B, T).
    """
    p, t = _check_pair(pred, target)  # (B, T, H, W) float64
    b, n_t = p.shape[:2]
    diff = p - t
    sq_sum = np.square(diff).sum(axis=(2, 3))  # (B, T)
    abs_sum = np.abs(diff).sum(axis=(2, 3))  # (B, T)
    pixels = p.shape[2] * p.shape[3]
    mean_sq = np.maximum(sq_sum / max(pixels, 1), PSNR_MSE_FLOOR)
    psnr = -10.0 * np.log10(mean_sq)  # (B, T)
    ssim = np.empty((b, n_t), dtype=np.float64)
    # A plain loop over frames is the fastest option here: scikit-image on one 64x64
    # frame costs ~0.35 ms, cheaper than a batched (B*T, H, W) filter that spills cache.
    for i in range(b):
        for j in range(n_t):
            ssim[i, j] = structural_similarity(
                p[i, j], t[i, j], data_range=SSIM_DATA_RANGE)
    return {"mse": sq_sum, "mae": abs_sum, "ssim": ssim, "psnr": psnr}


class StreamingMetrics:
    """Accumulates per-frame metric sums batch by batch (float64), never keeping frames.

    ``update`` may be called with batches of any size; all batches must share T, H and W.
    Partial accumulators (other ranks or processes) combine with ``merge`` or through
    ``state_dict`` / ``from_state_dict`` (plain JSON-serialisable dicts).
    """

    def __init__(self):
        self.reset()

    def reset(self):
        """Forget everything accumulated so far."""
        self.num_sequences = 0
        self.frame_shape = None  # (T, H, W) once the first batch arrived
        self._sums = None  # metric name -> float64 (T,) sum over sequences

    def _check_frame_shape(self, frame_shape, what):
        if self.frame_shape is not None and tuple(frame_shape) != self.frame_shape:
            raise ValueError(
                f"{what} has (T, H, W) = {tuple(frame_shape)} but earlier batches had "
                f"{self.frame_shape}; all batches must predict the same frames")

    def update(self, pred, target):
        """Add one batch. pred, target: numpy (B, T, 1, H, W) or (B, T, H, W) in [0, 1]."""
        shape = np.shape(target)
        if len(shape) in (4, 5):  # check consistency before the (costly) SSIM loop
            frame_shape = (shape[1], shape[-2], shape[-1])  # (T, H, W)
            self._check_frame_shape(frame_shape, "this batch")
        per_frame = frame_metrics(pred, target)  # name -> (B, T); validates both arrays
        batch = per_frame["mse"].shape[0]
        if batch == 0:
            return self
        if self._sums is None:
            self.frame_shape = tuple(int(v) for v in frame_shape)
            self._sums = {k: np.zeros(frame_shape[0], dtype=np.float64) for k in METRIC_NAMES}
        for k in METRIC_NAMES:
            self._sums[k] += per_frame[k].sum(axis=0)
        self.num_sequences += batch
        return self

    def merge(self, other):
        """Add the sums of another ``StreamingMetrics`` (e.g. another rank's) into this one."""
        if not isinstance(other, StreamingMetrics):
            raise TypeError(f"can only merge StreamingMetrics, got {type(other).__name__}")
        if other.num_sequences == 0:
            return self
        self._check_frame_shape(other.frame_shape, "the merged accumulator")
        if self._sums is None:
            self.frame_shape = other.frame_shape
            self._sums = {k: np.zeros(other.frame_shape[0], dtype=np.float64)
                          for k in METRIC_NAMES}
        for k in METRIC_NAMES:
            self._sums[k] += other._sums[k]
        self.num_sequences += other.num_sequences
        return self

    def state_dict(self):
        """Plain-python snapshot (JSON-serialisable) of the accumulated sums."""
        return {
            "num_sequences": int(self.num_sequences),
            "frame_shape": None if self.frame_shape is None else list(self.frame_shape),
            "sums": None if self._sums is None
            else {k: [float(v) for v in self._sums[k]] for k in METRIC_NAMES},
        }

    @classmethod
    def from_state_dict(cls, state):
        """Rebuild an accumulator from :meth:`state_dict` output."""
        acc = cls()
        n = int(state.get("num_sequences", 0))
        if n == 0:
            return acc
        shape, sums = state.get("frame_shape"), state.get("sums")
        if not shape or len(shape) != 3 or not sums or set(sums) != set(METRIC_NAMES):
            raise ValueError(
                "metrics state must have frame_shape [T, H, W] and sums for " + ", ".join(METRIC_NAMES))
        acc.frame_shape = tuple(int(v) for v in shape)
        acc._sums = {k: np.asarray(sums[k], dtype=np.float64) for k in METRIC_NAMES}
        if any(v.shape != (acc.frame_shape[0],) for v in acc._sums.values()):
            raise ValueError(f"metrics state: each sum needs {acc.frame_shape[0]} per-frame values")
        acc.num_sequences = n
        return acc

    def result(self):
        """Averages and per-frame curves as plain python floats/lists.

        Returns dict(num_sequences, mse, mae, ssim, psnr,
        per_frame=dict(mse=[...], mae=[...], ssim=[...], psnr=[...])), one per-frame
        value per predicted frame. Raises ValueError if nothing was accumulated.
        """
        if self.num_sequences == 0:
            raise ValueError("no sequences were accumulated; call update() with at least one batch")
        out = {"num_sequences": int(self.num_sequences)}
        per_frame = {}
        for k in METRIC_NAMES:
            curve = self._sums[k] / self.num_sequences  # (T,) mean over sequences
            # every frame has the same number of sequences, so the mean of the curve is
            # the mean over all (sequence, frame) pairs
            out[k] = float(curve.mean())
            per_frame[k] = [float(v) for v in curve]
        out["per_frame"] = per_frame
        return out


def compute_metrics(pred, target):
    """One-shot convenience: ``StreamingMetrics().update(pred, target).result()``."""
    return StreamingMetrics().update(pred, target).result()


def format_table(result, first_frame=11):
    """Readable text table of a :meth:`StreamingMetrics.result` dict.

    ``first_frame`` is the 1-based index of the first predicted frame (11 for 10 -> 10).
    """
    per_frame = result["per_frame"]
    n_frames = len(per_frame["mse"])
    last = first_frame + n_frames - 1
    header = f"{'frame':>7} {'MSE':>10} {'MAE':>10} {'SSIM':>8} {'PSNR(dB)':>9}"
    rule = "-" * len(header)

    def row(label, mse, mae, ssim, psnr):
        return f"{label:>7} {mse:10.3f} {mae:10.3f} {ssim:8.4f} {psnr:9.3f}"

    lines = [
        f"{result['num_sequences']} sequences, predicted frames {first_frame}..{last}",
        header,
        rule,
    ]
    for i in range(n_frames):
        lines.append(row(str(first_frame + i), *(per_frame[k][i] for k in METRIC_NAMES)))
    lines.append(rule)
    lines.append(row("mean", *(result[k] for k in METRIC_NAMES)))
    lines.append(
        "MSE/MAE: per-frame SUM over pixels in [0,1]; SSIM: skimage, data_range=1.0; "
        f"PSNR capped at {PSNR_CAP_DB:g} dB")
    return "\n".join(lines)
