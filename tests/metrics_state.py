"""Combining and snapshotting ``StreamingMetrics`` accumulators (used by the tests only).

They show that the accumulator is a plain sum per predicted frame: parts of a test set
scored separately (other processes, other ranks) add up to the whole.
"""
import numpy as np

from src.metrics import METRIC_NAMES, StreamingMetrics


def merge(acc, other):
    """Add the sums of ``other`` into ``acc`` (both ``StreamingMetrics``); returns ``acc``."""
    if not isinstance(other, StreamingMetrics):
        raise TypeError(f"can only merge StreamingMetrics, got {type(other).__name__}")
    if other.num_sequences == 0:
        return acc
    acc._check_frame_shape(other.frame_shape, "the merged accumulator")
    if acc._sums is None:
        acc.frame_shape = other.frame_shape
        acc._sums = {k: np.zeros(other.frame_shape[0], dtype=np.float64) for k in METRIC_NAMES}
    for k in METRIC_NAMES:
        acc._sums[k] += other._sums[k]
    acc.num_sequences += other.num_sequences
    return acc


def state_dict(acc):
    """Plain-python snapshot (JSON-serialisable) of an accumulator's sums."""
    return {
        "num_sequences": int(acc.num_sequences),
        "frame_shape": None if acc.frame_shape is None else list(acc.frame_shape),
        "sums": None if acc._sums is None else {k: [float(v) for v in acc._sums[k]] for k in METRIC_NAMES},
    }


def from_state_dict(state):
    """Rebuild an accumulator from :func:`state_dict` output."""
    acc = StreamingMetrics()
    if int(state.get("num_sequences", 0)) == 0:
        return acc
    shape, sums = state.get("frame_shape"), state.get("sums")
    if not shape or len(shape) != 4 or not sums or set(sums) != set(METRIC_NAMES):
        raise ValueError("metrics state must have frame_shape [T, C, H, W] and sums for " + ", ".join(METRIC_NAMES))
    acc.frame_shape = tuple(int(v) for v in shape)
    acc._sums = {k: np.asarray(sums[k], dtype=np.float64) for k in METRIC_NAMES}
    if any(v.shape != (acc.frame_shape[0],) for v in acc._sums.values()):
        raise ValueError(f"metrics state: each sum needs {acc.frame_shape[0]} per-frame values")
    acc.num_sequences = int(state["num_sequences"])
    return acc
