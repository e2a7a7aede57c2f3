"""The one metrics implementation (validation, eval.py, 310 post-processing), so every reported number agrees.

Frame metrics on [0, 1] frames (pred clipped): ``mse``/``mae`` per-frame pixel SUMS; ``ssim`` skimage's,
data_range 1, mean over channels; ``ssim_openstl`` OpenSTL's (data range 2, compare only with OpenSTL);
``psnr`` in dB, capped at ``PSNR_CAP_DB`` so averages stay finite. ``BalancedErrors``: HKO-7's B-MSE/B-MAE
(Shi et al. 2017), errors weighted 1, 1, 2, 5, 10, 30 by the TRUTH's class (a value on a threshold takes the
higher one). ``SkillScores``: HKO-7's POD/FAR/CSI/HSS on unnormalised values, event = ``value >= threshold``
(as ``get_hit_miss_counts``); exact integer counts, a zero denominator gives None and a note, never NaN.
``FractionsSkillScore``: Roberts and Lean's (2008) FSS of the same events per neighbourhood scale, from exact
integer sums of squared box counts (``FSS_CONVENTION``), None and a note where no event exists.
Every ``update`` takes an optional ``valid`` mask (bool, the target's shape) of the pixels with data (``nodata``):
only those are scored (``NO_DATA_CONVENTION``); without it every pixel is, as always.
"""
import math

import numpy as np
from skimage.metrics import structural_similarity

from src.config import is_dbz_data
from src.errors import DataError

METRIC_NAMES = ("mse", "mae", "ssim", "ssim_openstl", "psnr")
PSNR_MSE_FLOOR = 1e-10
PSNR_CAP_DB = -10.0 * math.log10(PSNR_MSE_FLOOR)  # 100 dB
SSIM_DATA_RANGE = 1.0
OPENSTL_SSIM_DATA_RANGE = 2.0  # scikit-image <= 0.19 took it from the float dtype range (-1, 1)
SSIM_WINDOW = 7  # scikit-image's default uniform window
_TARGET_TOLERANCE = 1e-4  # targets may exceed [0, 1] by float rounding only

SKILL_SCORE_NAMES = ("pod", "far", "csi", "hss")
COUNT_NAMES = ("hits", "misses", "false_alarms", "correct_negatives")
EVENT_CONVENTION = ("event: value >= threshold (in the units of pred and target); counts summed over all "
                    "sequences, channels and pixels")
UNDEFINED_BECAUSE = {
    "pod": "hits + misses = 0: no observed event",
    "far": "hits + false_alarms = 0: no predicted event",
    "csi": "hits + misses + false_alarms = 0: no observed or predicted event",
    "hss": "(H+M)(M+N) + (H+F)(F+N) = 0: prediction and truth both without events or both all events",
}


class MetricInputError(DataError, ValueError):
    """Frames the metrics cannot score: a DataError (one ``error:`` line), a ValueError for callers."""


# ---------------------------------------------------------------- frame metrics

def _numeric_video(array, name):
    """``array`` as a numeric numpy array of shape (B, T, C, H, W) or (B, T, H, W)."""
    arr = np.asarray(array)
    if arr.ndim not in (4, 5):
        raise MetricInputError(f"{name}: expected shape (B, T, C, H, W) or (B, T, H, W), got {arr.shape}")
    if arr.dtype.kind not in "biuf":  # bool, integer or floating
        raise MetricInputError(f"{name}: expected a numeric array, got dtype {arr.dtype}")
    return arr


def as_frames(array, name):
    """Return ``array`` as float64 (B, T, C, H, W); accepts (B, T, C, H, W) or (B, T, H, W)."""
    arr = _numeric_video(array, name)
    if arr.ndim == 4:
        arr = arr[:, :, np.newaxis]  # (B, T, 1, H, W)
    if arr.shape[2] == 0:
        raise MetricInputError(f"{name}: frames have no channel, shape {arr.shape}")
    return arr.astype(np.float64, copy=False)


def _check_pair(pred, target):
    """Convert and validate one batch; return float64 (B, T, C, H, W) pred (clipped) and target."""
    p = as_frames(pred, "pred")
    t = as_frames(target, "target")
    if p.shape != t.shape:
        raise MetricInputError(f"pred and target shapes differ: pred {np.shape(pred)} vs target "
                               f"{np.shape(target)} (both must be (B, T, C, H, W) or (B, T, H, W) "
                               "with the same sizes)")
    height, width = p.shape[3:]
    if p.size and min(height, width) < SSIM_WINDOW:
        raise MetricInputError(f"frames of {height}x{width} pixels are too small for SSIM (its window is "
                               f"{SSIM_WINDOW}x{SSIM_WINDOW}); frames need at least {SSIM_WINDOW} "
                               "pixels per side")
    if p.size and not np.isfinite(p).all():
        raise MetricInputError("pred contains NaN or infinite values (did training diverge?)")
    if t.size:
        if not np.isfinite(t).all():
            raise MetricInputError("target contains NaN or infinite values")
        lo, hi = float(t.min()), float(t.max())
        if lo < -_TARGET_TOLERANCE or hi > 1.0 + _TARGET_TOLERANCE:
            raise MetricInputError(f"target values must lie in [0, 1], got [{lo:g}, {hi:g}] "
                                   "(uint8 frames must be divided by 255 first)")
    return np.clip(p, 0.0, 1.0), t


def ssim_frame(pred_frame, true_frame):
    """(C, H, W) float64 -> mean over channels of scikit-image's SSIM, ``data_range=1.0``."""
    return sum(structural_similarity(p, t, data_range=SSIM_DATA_RANGE)
               for p, t in zip(pred_frame, true_frame)) / pred_frame.shape[0]


def ssim_openstl_frame(pred_frame, true_frame):
    """SSIM of one (C, H, W) frame as OpenSTL's ``metric()``: float32 (W, H, C), and the range 2.0 that
    skimage <= 0.19 implied for floats (passed explicitly now); >= ``ssim`` on non-negative pixels."""
    p = np.asarray(pred_frame, dtype=np.float32).swapaxes(0, 2)  # (W, H, C)
    t = np.asarray(true_frame, dtype=np.float32).swapaxes(0, 2)  # (W, H, C)
    return float(structural_similarity(p, t, channel_axis=-1, data_range=OPENSTL_SSIM_DATA_RANGE))


def split_no_data(target):
    """(target with NaN set to the background 0, bool valid mask): NaN marks no-data pixels in normalised targets
    (src.data.sequences, with ``nodata``)."""
    target = np.asarray(target)
    valid = ~np.isnan(target)
    return np.where(valid, target, 0.0).astype(target.dtype, copy=False), valid


def _flat_valid(valid, shape):
    """``valid`` (the target's shape) as bool of ``shape`` (B, T, values per frame)."""
    if np.size(valid) != int(np.prod(shape)):
        raise MetricInputError(f"valid mask has shape {np.shape(valid)}, the target {np.prod(shape)} values")
    return np.asarray(valid, dtype=bool).reshape(shape)


def _valid_mask(valid, shape, name="valid"):
    """``valid`` (the shape of pred/target) as bool (B, T, C, H, W) of ``shape``."""
    v = np.asarray(valid)
    if v.ndim == 4:
        v = v[:, :, np.newaxis]  # (B, T, 1, H, W)
    if v.shape != tuple(shape):
        raise MetricInputError(f"{name} mask has shape {np.shape(valid)}, pred and target {tuple(shape)}")
    return v.astype(bool, copy=False)


def masked_frames(p, t, valid):
    """p, t (B, T, C, H, W) with both set to the background 0 where ``valid`` is False: no-data pixels add
    nothing to the error sums and agree in SSIM/PSNR."""
    v = _valid_mask(valid, p.shape)
    return np.where(v, p, 0.0), np.where(v, t, 0.0)


def frame_metrics(pred, target, valid=None):
    """Per-sequence, per-frame metrics of one batch: metric name -> float64 (B, T). ``valid`` (bool, the
    target's shape; None: every pixel): MSE/MAE are sums over valid pixels; SSIM and PSNR are of the frames with
    prediction and truth both set to the background 0 at no-data pixels."""
    p, t = _check_pair(pred, target)  # (B, T, C, H, W) float64
    if valid is not None:
        p, t = masked_frames(p, t, valid)  # (B, T, C, H, W) each
    b, n_t = p.shape[:2]
    diff = p - t
    sq_sum = np.square(diff).sum(axis=(2, 3, 4))  # (B, T)
    abs_sum = np.abs(diff).sum(axis=(2, 3, 4))  # (B, T)
    values = p.shape[2] * p.shape[3] * p.shape[4]
    mean_sq = np.maximum(sq_sum / max(values, 1), PSNR_MSE_FLOOR)
    psnr = -10.0 * np.log10(mean_sq)  # (B, T)
    # A plain loop over frames is the fastest option here: scikit-image on one 64x64
    # frame costs ~0.3 ms, cheaper than a batched (B*T, H, W) filter that spills cache.
    ssim, ssim_openstl = np.empty((b, n_t)), np.empty((b, n_t))  # float64
    for i, j in np.ndindex(b, n_t):
        ssim[i, j] = ssim_frame(p[i, j], t[i, j])
        ssim_openstl[i, j] = ssim_openstl_frame(p[i, j], t[i, j])
    return {"mse": sq_sum, "mae": abs_sum, "ssim": ssim, "ssim_openstl": ssim_openstl, "psnr": psnr}


class StreamingMetrics:
    """Per-frame metric sums (float64) batch by batch, never keeping frames; batches share T, C, H, W."""

    def __init__(self):
        self.num_sequences = 0
        self.frame_shape = None  # (T, C, H, W) once the first batch arrived
        self._sums = None  # metric name -> float64 (T,) sum over sequences
        self.values = self.no_data = 0  # target values seen and those without data (with a valid mask)
        self.masked = False  # a valid mask was given: result() reports the no-data share

    def _check_frame_shape(self, frame_shape, what):
        if self.frame_shape is not None and tuple(frame_shape) != self.frame_shape:
            raise MetricInputError(f"{what} has (T, C, H, W) = {tuple(frame_shape)} but earlier batches had "
                                   f"{self.frame_shape}; all batches must predict the same frames")

    def update(self, pred, target, valid=None):
        """Add a batch; ``valid`` (bool, target's shape): pixels with data (frame_metrics)."""
        shape = np.shape(target)  # checked against earlier batches before the (costly) SSIM loop
        if len(shape) in (4, 5):
            frame_shape = shape[1:2] + (1,) + shape[2:] if len(shape) == 4 else shape[1:]  # (T, C, H, W)
            self._check_frame_shape(tuple(int(v) for v in frame_shape), "this batch")
        per_frame = frame_metrics(pred, target, valid)  # name -> (B, T); validates both arrays
        batch = per_frame["mse"].shape[0]
        if valid is not None:
            self.masked = True
            self.values += int(np.size(valid))
            self.no_data += int(np.size(valid) - np.count_nonzero(valid))
        if batch == 0:
            return self
        if self._sums is None:
            self.frame_shape = frame_shape
            self._sums = {k: np.zeros(frame_shape[0], dtype=np.float64) for k in METRIC_NAMES}
        for k in METRIC_NAMES:
            self._sums[k] += per_frame[k].sum(axis=0)
        self.num_sequences += batch
        return self

    def result(self):
        """dict(num_sequences, mse, ..., psnr, per_frame={name: [one float per predicted frame]})."""
        _require_sequences(self.num_sequences)
        curves = {k: self._sums[k] / self.num_sequences for k in METRIC_NAMES}  # (T,) means over sequences
        result = {"num_sequences": int(self.num_sequences), **{k: float(c.mean()) for k, c in curves.items()},
                  "per_frame": {k: [float(v) for v in c] for k, c in curves.items()}}
        if self.masked:
            result["no_data"] = no_data_report(self.no_data, self.values)
        return result


NO_DATA_CONVENTION = ("no-data target pixels (nodata) are left out: mse/mae sum over pixels with data, ssim/psnr of "
                      "frames whose prediction and truth are both set to the background there; skill scores, FSS "
                      "and balanced errors count pixels with data only")


def no_data_report(no_data, values):
    """metrics.json's "no_data": how many scored target values had no data."""
    return {"target_values": int(values), "no_data_values": int(no_data),
            "fraction": float(no_data) / values if values else 0.0, "convention": NO_DATA_CONVENTION}


def _require_sequences(num_sequences):
    if num_sequences == 0:
        raise ValueError("no sequences were accumulated; call update() with at least one batch")


def format_table(result, first_frame=11):
    """Text table of a StreamingMetrics.result(); ``first_frame``: 1-based index of the first prediction."""
    per_frame = result["per_frame"]
    n_frames = len(per_frame["mse"])
    last = first_frame + n_frames - 1
    header = f"{'frame':>7} {'MSE':>10} {'MAE':>10} {'SSIM':>8} {'SSIM-OSTL':>9} {'PSNR(dB)':>9}"
    rule = "-" * len(header)

    def row(label, mse, mae, ssim, ssim_openstl, psnr):
        return f"{label:>7} {mse:10.3f} {mae:10.3f} {ssim:8.4f} {ssim_openstl:9.4f} {psnr:9.3f}"

    lines = [f"{result['num_sequences']} sequences, predicted frames {first_frame}..{last}", header, rule]
    lines += [row(str(first_frame + i), *(per_frame[k][i] for k in METRIC_NAMES)) for i in range(n_frames)]
    lines += [rule, row("mean", *(result[k] for k in METRIC_NAMES)),
              "MSE/MAE: per-frame SUM over pixels in [0,1]; SSIM: skimage, data_range=1.0; "
              f"SSIM-OSTL: as OpenSTL computes it (data_range 2.0), compare only with OpenSTL's SSIM; "
              f"PSNR capped at {PSNR_CAP_DB:g} dB"]
    return "\n".join(lines)


# ---------------------------------------------------------------- nowcasting skill scores

def _ratio(numerator, denominator):
    """numerator / denominator, or None for a zero denominator."""
    return None if denominator == 0 else numerator / denominator


def contingency_scores(hits, misses, false_alarms, correct_negatives):
    """dict(pod, far, csi, hss) of one contingency table, None where undefined (``UNDEFINED_BECAUSE``)."""
    h, m, f, n = (int(v) for v in (hits, misses, false_alarms, correct_negatives))
    if min(h, m, f, n) < 0:
        raise ValueError(f"contingency counts must be >= 0, got H={h} M={m} F={f} N={n}")
    return {"pod": _ratio(h, h + m), "far": _ratio(f, h + f), "csi": _ratio(h, h + m + f),
            # python integers: these products overflow int64 for large test sets
            "hss": _ratio(2 * (h * n - m * f), (h + m) * (m + n) + (h + f) * (f + n))}


def _check_thresholds(thresholds):
    try:
        values = [float(v) for v in thresholds]
    except (TypeError, ValueError):
        raise ValueError(f"skill-score thresholds must be a list of numbers, got {thresholds!r}") from None
    if not values:
        raise ValueError("skill scores need at least one threshold")
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"skill-score thresholds must be finite numbers, got {values}")
    if len(set(values)) != len(values):
        raise ValueError(f"skill-score thresholds must differ from each other, got {values}")
    return tuple(sorted(values))


def _finite_values(array, name):
    """(B, T, C*H*W) view of a (B, T, C, H, W) or (B, T, H, W) numeric array in user units."""
    arr = _numeric_video(array, name)
    arr = arr.reshape(arr.shape[0], arr.shape[1], int(np.prod(arr.shape[2:])))  # (B, T, values per frame)
    if arr.size and not np.isfinite(arr).all():
        raise MetricInputError(f"{name} contains NaN or infinite values; skill scores need finite values "
                               "(replace no-data pixels before scoring)")
    return arr


def _mean_of_defined(values):
    defined = [v for v in values if v is not None]
    return sum(defined) / len(defined) if defined else None


def _lead_frame_notes(threshold, name, curve):
    """Notes about undefined per-lead-frame values of one score (lead frames are 1-based)."""
    missing = [i + 1 for i, v in enumerate(curve) if v is None]
    if not missing:
        return []
    where = f"{name.upper()} at threshold {threshold:g} undefined"
    why = UNDEFINED_BECAUSE[name]
    if len(missing) == len(curve):
        return [f"{where} at every lead frame ({why}); no mean over lead frames"]
    others = len(curve) - len(missing)
    return [f"{where} at lead frame(s) {', '.join(map(str, missing))} ({why}); its mean is over the other "
            f"{others} lead frame{'s' if others > 1 else ''}"]


class SkillScores:
    """Streaming contingency counts per threshold (data units, sorted, no duplicates) and lead frame.

    ``update(pred, target)``: same-shape (B, T, ...) arrays ALREADY in those units (never clipped or
    rescaled); T the same in every batch."""

    def __init__(self, thresholds):
        self.thresholds = _check_thresholds(thresholds)
        self.num_sequences = 0
        self.lead_frames = None
        self._counts = None  # count name -> int64 (K thresholds, T lead frames)

    def update(self, pred, target, valid=None):
        """Add a batch; ``valid`` (bool, target's shape; None: all): only pixels with data are counted."""
        p = _finite_values(pred, "pred")  # (B, T, P)
        t = _finite_values(target, "target")  # (B, T, P)
        if np.shape(pred) != np.shape(target):
            raise MetricInputError(f"pred and target shapes differ: pred {np.shape(pred)} vs target "
                                   f"{np.shape(target)}")
        batch, lead_frames, per_frame = p.shape
        if self.lead_frames is not None and lead_frames != self.lead_frames:
            raise MetricInputError(f"this batch has {lead_frames} lead frames but earlier batches had "
                                   f"{self.lead_frames}; all batches must predict the same frames")
        if batch == 0:
            return self
        if self._counts is None:
            self.lead_frames = lead_frames
            self._counts = {k: np.zeros((len(self.thresholds), lead_frames), dtype=np.int64)
                            for k in COUNT_NAMES}
        v = None if valid is None else _flat_valid(valid, t.shape)  # (B, T, P) bool
        total = batch * per_frame if v is None else np.count_nonzero(v, axis=(0, 2))  # values per lead frame
        for k, threshold in enumerate(self.thresholds):
            pred_event = p >= threshold  # (B, T, P)
            true_event = t >= threshold  # (B, T, P)
            if v is not None:
                pred_event &= v
                true_event &= v
            hits = np.count_nonzero(pred_event & true_event, axis=(0, 2))  # (T,)
            predicted = np.count_nonzero(pred_event, axis=(0, 2))  # (T,) H + F
            observed = np.count_nonzero(true_event, axis=(0, 2))  # (T,) H + M
            for name, count in zip(COUNT_NAMES, (hits, observed - hits, predicted - hits,
                                                 total - predicted - observed + hits)):
                self._counts[name][k] += count
        self.num_sequences += batch
        return self

    def _threshold_result(self, k):
        threshold = self.thresholds[k]
        counts = {name: [int(v) for v in self._counts[name][k]] for name in COUNT_NAMES}  # T each
        per_lead = [contingency_scores(*(counts[name][i] for name in COUNT_NAMES))
                    for i in range(self.lead_frames)]
        curves = {s: [scores[s] for scores in per_lead] for s in SKILL_SCORE_NAMES}
        pooled_counts = {name: sum(counts[name]) for name in COUNT_NAMES}
        pooled = dict(pooled_counts, **contingency_scores(*(pooled_counts[n] for n in COUNT_NAMES)))
        notes = []
        for s in SKILL_SCORE_NAMES:
            notes += _lead_frame_notes(threshold, s, curves[s])
            if pooled[s] is None:
                notes.append(f"pooled {s.upper()} at threshold {threshold:g} undefined ({UNDEFINED_BECAUSE[s]})")
        return {"threshold": threshold, "per_lead_frame": dict(counts, **curves),
                "mean_over_lead_frames": {s: _mean_of_defined(curves[s]) for s in SKILL_SCORE_NAMES},
                "pooled": pooled, "notes": notes}

    def result(self):
        """JSON-ready scores; per threshold: ``per_lead_frame`` counts and scores (the benchmark's
        per-lead-time ones), their ``mean_over_lead_frames`` where defined (its averages), ``pooled``
        (counts summed over lead frames, so weighted by events) and ``notes`` on each None."""
        _require_sequences(self.num_sequences)
        return {"num_sequences": int(self.num_sequences), "lead_frames": int(self.lead_frames),
                "thresholds": list(self.thresholds), "convention": EVENT_CONVENTION,
                "by_threshold": [self._threshold_result(k) for k in range(len(self.thresholds))]}


def _score_cell(value):
    return f"{'-':>7}" if value is None else f"{value:7.4f}"


def format_skill_table(result, which="mean_over_lead_frames"):
    """Table threshold x (POD, FAR, CSI, HSS) of a SkillScores.result()'s ``which`` entry, notes below."""
    titles = {"mean_over_lead_frames": "mean over lead frames of the per-lead-frame scores",
              "pooled": "scores of the counts summed over all lead frames"}
    if which not in titles:
        raise ValueError(f"which must be one of {', '.join(titles)}, got {which!r}")
    header = f"{'threshold':>10} " + " ".join(f"{s.upper():>7}" for s in SKILL_SCORE_NAMES)
    lines = [f"skill scores, {result['num_sequences']} sequences x {result['lead_frames']} lead frames: "
             f"{titles[which]}", header, "-" * len(header)]
    lines += [f"{e['threshold']:>10g} " + " ".join(_score_cell(e[which][s]) for s in SKILL_SCORE_NAMES)
              for e in result["by_threshold"]]
    lines.append(f"{result['convention']}; '-' = undefined")
    lines += [f"note: {note}" for entry in result["by_threshold"] for note in entry["notes"]]
    return "\n".join(lines)


# ---------------------------------------------------------------- balanced errors (HKO-7)

HKO7_RAIN_RATES = (0.5, 2.0, 5.0, 10.0, 30.0)  # mm/h, class boundaries of Shi et al. (2017)
HKO7_WEIGHTS = (1.0, 1.0, 2.0, 5.0, 10.0, 30.0)  # one per class, lightest first


# HKO-7's Marshall-Palmer-type Z-R relation dBZ = 10 log10(58.53 R^1.56), R in mm/h: 12.98 ... 40.72 dBZ
HKO7_DBZ_THRESHOLDS = tuple(round(10.0 * math.log10(58.53) + 15.6 * math.log10(rate), 4)
                            for rate in HKO7_RAIN_RATES)


def check_balance(thresholds, weights):
    """(thresholds ascending, weights) as floats, or ValueError naming what is wrong."""
    values = [float(v) for v in thresholds]
    if not values or sorted(set(values)) != values or not all(math.isfinite(v) for v in values):
        raise ValueError(f"balance thresholds must be increasing finite numbers, got {list(thresholds)}")
    w = [float(v) for v in weights]
    if len(w) != len(values) + 1:
        raise ValueError(f"need one weight more than thresholds ({len(values) + 1}), got {len(w)}")
    if not all(math.isfinite(v) and v > 0 for v in w):
        raise ValueError(f"balance weights must be positive, got {list(weights)}")
    return tuple(values), tuple(w)


def balance_of(cfg):
    """(thresholds in the data's units, weights) of ``loss: balanced`` and of B-MSE/B-MAE, or None:
    loss_thresholds/loss_weights when given, else HKO-7's classes for dBZ data."""
    thresholds = cfg.loss_thresholds or (HKO7_DBZ_THRESHOLDS if is_dbz_data(cfg) else None)
    return None if thresholds is None else (tuple(thresholds), tuple(cfg.loss_weights or HKO7_WEIGHTS))


class BalancedErrors:
    """Streaming B-MSE / B-MAE (module docstring): ``update(pred, target, target_units)``, frames
    (B, T, ...) in [0, 1] and the target in the thresholds' units (the same shape)."""

    def __init__(self, thresholds, weights):
        self.thresholds, self.weights = check_balance(thresholds, weights)
        self.num_sequences = 0
        self._sums = None  # {"b_mse": (T,), "b_mae": (T,)} sums over sequences

    def update(self, pred, target, target_units, valid=None):
        """Add a batch; ``valid`` (bool, target's shape; None: all): weight 0 where there is no data."""
        if np.shape(pred) != np.shape(target) or np.shape(target) != np.shape(target_units):
            raise MetricInputError(f"pred {np.shape(pred)}, target {np.shape(target)} and target_units "
                                   f"{np.shape(target_units)} must have the same shape")
        batch, frames = np.shape(target)[:2]
        classes = np.searchsorted(np.asarray(self.thresholds, dtype=np.float64), np.asarray(target_units),
                                  side="right")  # class k: k thresholds <= truth
        w = np.asarray(self.weights, dtype=np.float64)[classes].reshape(batch, frames, -1)  # (B, T, P)
        if valid is not None:
            w = w * np.asarray(valid, dtype=np.float64).reshape(w.shape)  # (B, T, P): no data weighs 0
        err = np.clip(np.asarray(pred, np.float64), 0.0, 1.0) - np.asarray(target, np.float64)
        err = err.reshape(batch, frames, -1)
        sums = {"b_mse": (w * err ** 2).sum(axis=(0, 2)), "b_mae": (w * np.abs(err)).sum(axis=(0, 2))}  # (T,)
        self._sums = sums if self._sums is None else {key: self._sums[key] + sums[key] for key in sums}
        self.num_sequences += batch
        return self

    def result(self):
        """{"b_mse", "b_mae", "per_frame": {"b_mse": [...], "b_mae": [...]}, "thresholds", "weights"}."""
        if not self.num_sequences:
            raise MetricInputError("no sequences were added")
        curves = {key: [float(v) / self.num_sequences for v in s] for key, s in self._sums.items()}
        return dict({key: float(np.mean(c)) for key, c in curves.items()}, per_frame=curves,
                    thresholds=list(self.thresholds), weights=list(self.weights))


# ---------------------------------------------------------------- fractions skill score (Roberts and Lean 2008)

FSS_CONVENTION = ("event: value >= threshold (as SkillScores); fraction = events in the n x n box centred on a pixel "
                  "(even n: one row and column more above and left of it) / n^2, pixels outside the frame counted "
                  "as no event (zero padding, as pysteps' fss); each channel a field of its own; sums of (Pf-Po)^2, "
                  "Pf^2 and Po^2 over every pixel, channel and sequence of a lead frame (per_lead_frame) or of all "
                  "lead frames (pooled); FSS = 1 - sum (Pf-Po)^2 / (sum Pf^2 + sum Po^2); uniform_fss = 0.5 + f0/2 "
                  "(f0: observed event fraction), the skill at which a scale becomes useful")
FSS_UNDEFINED_BECAUSE = "no event in forecast nor observation"
_INT64_LIMIT = 2 ** 63


def check_fss_scales(scales):
    """Neighbourhood sizes in pixels as a sorted tuple of distinct positive ints, else ValueError."""
    try:
        values = list(scales)
    except TypeError:
        raise ValueError(f"FSS scales must be a list of positive integers (pixels), got {scales!r}") from None
    if not values:
        raise ValueError("FSS needs at least one scale")
    if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1 for v in values):
        raise ValueError(f"FSS scales must be positive integers (pixels), got {values}")
    if len(set(values)) != len(values):
        raise ValueError(f"FSS scales must differ from each other, got {values}")
    return tuple(sorted(int(v) for v in values))


def box_padding(scales):
    """Zero rows and columns an :func:`integral_image` needs on each side for boxes of every one of ``scales``."""
    return max(scale - scale // 2 for scale in scales)


def integral_image(events, pad):
    """Events (..., H, W) of 0/1 -> int32 (..., H + 2 pad + 1, W + 2 pad + 1): the events of the frame zero-padded
    by ``pad`` on each side, summed above and left of each corner (a leading zero row and column), so that any box
    sum is four look-ups; exact while the padded frame holds fewer than 2^31 pixels."""
    height, width = events.shape[-2:]
    integral = np.zeros(events.shape[:-2] + (height + 2 * pad + 1, width + 2 * pad + 1), dtype=np.int32)
    integral[..., pad + 1:pad + 1 + height, pad + 1:pad + 1 + width] = events
    return integral.cumsum(axis=-2, dtype=np.int32).cumsum(axis=-1, dtype=np.int32)


def box_sums(integral, pad, scale):
    """int32 (..., H, W) events in the scale x scale box of each pixel, from an :func:`integral_image` padded by
    ``pad`` >= box_padding([scale]). The box of pixel i spans i - scale//2 .. i - scale//2 + scale - 1, as
    scipy.ndimage.uniform_filter's window (an even scale reaches one pixel further before i than after it)."""
    height, width = integral.shape[-2] - 2 * pad - 1, integral.shape[-1] - 2 * pad - 1
    top = pad - scale // 2  # integral index of the first box's upper (left) edge
    bottom = top + scale
    bands = integral[..., bottom:bottom + height, :] - integral[..., top:top + height, :]  # (..., H, W + 2 pad + 1)
    return bands[..., bottom:bottom + width] - bands[..., top:top + width]  # (..., H, W)


def box_counts(events, scale):
    """Events (..., H, W) of 0/1 -> int32 (..., H, W): events in the scale x scale box of each pixel, zero padded
    (one integral image, so O(H W) whatever the scale)."""
    pad = box_padding([scale])
    return box_sums(integral_image(events, pad), pad, scale)


def _finite_fields(array, name):
    """float64 (B, T, C, H, W) of a (B, T, C, H, W) or (B, T, H, W) numeric array in the thresholds' units."""
    arr = as_frames(array, name)
    if arr.size and not np.isfinite(arr).all():
        raise MetricInputError(f"{name} contains NaN or infinite values; the FSS needs finite values "
                               "(replace no-data pixels before scoring)")
    return arr


def _frame_dots(a, b, wide):
    """int64 (N,) sums over each frame of a * b, for int32 (..., H, W) box counts; ``wide``: multiply in int64.
    (Summing a (N, H*W) view along its last axis is several times faster than numpy's sum over two axes.)"""
    if wide:
        a, b = a.astype(np.int64), b.astype(np.int64)
    return (a * b).reshape(-1, a.shape[-2] * a.shape[-1]).sum(axis=1, dtype=np.int64)  # (N,)


def _box_scales(height, width, scales):
    """The box sizes to count with: a scale of 2 x max(H, W) or more has boxes that hold the whole frame at every
    pixel, so it is counted at that size (the same counts; its fractions still divide by its own n^2). Refuses
    frames whose sums would not be exact: the padded integral image must fit int32 and a frame's sum of squared
    box counts int64 (only frames far beyond radar sizes: thousands of pixels a side)."""
    boxes = [min(scale, 2 * max(height, width)) for scale in scales]
    pad = box_padding(boxes)
    for scale, box in zip(scales, boxes):
        largest = min(box * box, height * width)  # a box holds at most this many events
        if (height + 2 * pad + 1) * (width + 2 * pad + 1) >= 2 ** 31 or height * width * largest ** 2 >= _INT64_LIMIT:
            raise MetricInputError(f"frames of {height}x{width} pixels are too large for an exact FSS at scale "
                                   f"{scale}; use smaller fss_scales")
    return boxes


class FractionsSkillScore:
    """Streaming FSS (Roberts and Lean 2008) per threshold (data units), scale (pixels) and lead frame.

    Memory is bounded: per (threshold, scale, lead frame) only the sums of squared box counts are kept, as
    Python ints (exact, so batches add up to the one-batch result in any order; the n^4 of the fractions
    cancels in the FSS and is divided out for the reported sums only). ``update(pred, target)``: same-shape
    (B, T, C, H, W) or (B, T, H, W) arrays ALREADY in the thresholds' units; T, C, H, W the same in every batch."""

    SUMS = ("sum_sq_diff", "sum_fcst_sq", "sum_obs_sq")  # of (cf - co)^2, cf^2, co^2 (box counts cf, co)

    def __init__(self, thresholds, scales):
        self.thresholds = _check_thresholds(thresholds)
        self.scales = check_fss_scales(scales)
        self.num_sequences = 0
        self.frame_shape = None  # (T, C, H, W) once the first batch arrived
        self._boxes = None  # box size per scale (_box_scales), once the frame size is known
        self._sums = None  # sum name -> object (K thresholds, S scales, T lead frames) of Python ints
        self._observed = None  # object (K, T): observed events per threshold and lead frame
        self._values = None  # object (T,): values with data per lead frame (all of them without a valid mask)

    def _start(self, frame_shape):
        if self.frame_shape is not None:
            if frame_shape != self.frame_shape:
                raise MetricInputError(f"this batch has (T, C, H, W) = {frame_shape} but earlier batches had "
                                       f"{self.frame_shape}; all batches must predict the same frames")
            return
        self._boxes = _box_scales(frame_shape[2], frame_shape[3], self.scales)  # (S,) sizes counted with
        self.frame_shape = frame_shape
        shape = (len(self.thresholds), len(self.scales), frame_shape[0])
        self._sums = {name: np.zeros(shape, dtype=object) for name in self.SUMS}  # Python int 0s
        self._observed = np.zeros(shape[::2], dtype=object)
        self._values = np.zeros(frame_shape[0], dtype=object)

    def update(self, pred, target, valid=None):
        """Add a batch. ``valid`` (bool, target's shape; None: all): a no-data pixel is treated like a pixel
        outside the frame: no event in either field, and no box centred on it enters the sums."""
        if np.shape(pred) != np.shape(target):
            raise MetricInputError(f"pred and target shapes differ: pred {np.shape(pred)} vs target "
                                   f"{np.shape(target)}")
        p = _finite_fields(pred, "pred")  # (B, T, C, H, W)
        t = _finite_fields(target, "target")  # (B, T, C, H, W)
        self._start(tuple(int(v) for v in p.shape[1:]))
        if p.shape[0] == 0:
            return self
        pad = box_padding(self._boxes)
        v = None if valid is None else _valid_mask(valid, p.shape)  # (B, T, C, H, W) bool
        for lead in range(p.shape[1]):
            self._values[lead] += int(p[:, lead].size if v is None else np.count_nonzero(v[:, lead]))
        for k, threshold in enumerate(self.thresholds):
            for lead in range(p.shape[1]):  # one lead frame at a time: the integral images stay small
                fcst_events, obs_events = p[:, lead] >= threshold, t[:, lead] >= threshold  # (B, C, H, W) each
                centres = None if v is None else v[:, lead].astype(np.int32)  # (B, C, H, W) 1 where data
                if centres is not None:
                    fcst_events, obs_events = fcst_events & v[:, lead], obs_events & v[:, lead]
                forecast = integral_image(fcst_events, pad)  # (B, C, H + 2 pad + 1, W + 2 pad + 1)
                observed = integral_image(obs_events, pad)  # (B, C, H + 2 pad + 1, W + 2 pad + 1)
                self._observed[k, lead] += int(observed[..., -1, -1].astype(np.int64).sum())  # whole-frame counts
                for s, box in enumerate(self._boxes):
                    cf, co = box_sums(forecast, pad, box), box_sums(observed, pad, box)  # (B, C, H, W) int32
                    if centres is not None:
                        cf, co = cf * centres, co * centres  # boxes centred on no-data pixels left out
                    self._add_scale(k, s, lead, cf, co)
        self.num_sequences += p.shape[0]
        return self

    def _add_scale(self, k, s, lead, cf, co):
        """Add the squared box counts of cf, co (B, C, H, W) int32 of one lead frame: per-frame int64 sums of
        products (bounded by _box_scales), added up as Python ints; (cf - co)^2 = cf^2 + co^2 - 2 cf co."""
        wide = min(self._boxes[s] ** 2, cf.shape[-2] * cf.shape[-1]) ** 2 >= 2 ** 31  # a product may exceed int32
        fcst, obs, cross = (sum(int(v) for v in _frame_dots(a, b, wide)) for a, b in ((cf, cf), (co, co), (cf, co)))
        for name, value in zip(self.SUMS, (fcst + obs - 2 * cross, fcst, obs)):
            self._sums[name][k, s, lead] += value

    @staticmethod
    def _fss(diff, fcst, obs):
        """1 - diff / (fcst + obs) of exact integer sums, None when both fields are without events."""
        return None if fcst + obs == 0 else 1.0 - diff / (fcst + obs)

    def _scale_result(self, k, s):
        scale = self.scales[s]
        sums = {name: [int(v) for v in self._sums[name][k, s]] for name in self.SUMS}  # T each, squared counts
        per_lead = [self._fss(*(sums[name][i] for name in self.SUMS)) for i in range(self.frame_shape[0])]
        pooled = {name: sum(values) for name, values in sums.items()}
        as_fractions = scale ** 4  # box counts -> fractions: divide squared counts by n^4
        return {"scale": scale,
                "per_lead_frame": dict({name: [v / as_fractions for v in sums[name]] for name in self.SUMS},
                                       fss=per_lead),
                "mean_over_lead_frames": {"fss": _mean_of_defined(per_lead)},
                "pooled": dict({name: pooled[name] / as_fractions for name in self.SUMS},
                               fss=self._fss(*(pooled[name] for name in self.SUMS)))}

    def _threshold_result(self, k):
        threshold = self.thresholds[k]
        values = [int(v) for v in self._values]  # (T,) values with data per lead frame
        fractions = [int(o) / n if n else 0.0 for o, n in zip(self._observed[k], values)]  # (T,) observed fraction f0
        total = sum(values)
        observed = sum(int(v) for v in self._observed[k]) / total if total else 0.0  # mean(fractions) without masks
        scales = [self._scale_result(k, s) for s in range(len(self.scales))]
        uniform = 0.5 + observed / 2
        useful = [e["scale"] for e in scales if e["mean_over_lead_frames"]["fss"] is not None
                  and e["mean_over_lead_frames"]["fss"] >= uniform]
        notes = _fss_notes(threshold, scales[0]["per_lead_frame"]["fss"])  # defined at one scale = at all
        return {"threshold": threshold, "observed_fraction": observed, "uniform_fss": uniform,
                "smallest_useful_scale": useful[0] if useful else None,
                "per_lead_frame": {"observed_fraction": fractions, "uniform_fss": [0.5 + f / 2 for f in fractions]},
                "by_scale": scales, "notes": notes}

    def result(self):
        """JSON-ready FSS; per threshold: the observed event fraction f0 and R&L's uniform FSS 0.5 + f0/2 (per
        lead frame and over all; the latter is their mean when every lead frame has as many pixels with data), the
        smallest scale whose mean FSS reaches it, and per scale the FSS ``per_lead_frame`` with its sums (in fraction
        units), ``mean_over_lead_frames`` of the defined ones, ``pooled`` (sums over all lead frames); ``notes``
        on each None (no event in forecast nor observation: undefined at every scale alike)."""
        _require_sequences(self.num_sequences)
        return {"num_sequences": int(self.num_sequences), "lead_frames": int(self.frame_shape[0]),
                "thresholds": list(self.thresholds), "scales": list(self.scales), "convention": FSS_CONVENTION,
                "by_threshold": [self._threshold_result(k) for k in range(len(self.thresholds))]}


def _fss_notes(threshold, curve):
    """Notes on undefined per-lead-frame FSS values at ``threshold`` (lead frames 1-based)."""
    missing = [i + 1 for i, v in enumerate(curve) if v is None]
    if not missing:
        return []
    where = f"FSS at threshold {threshold:g} undefined at every scale"
    if len(missing) == len(curve):
        return [f"{where} at every lead frame ({FSS_UNDEFINED_BECAUSE}); no mean over lead frames, pooled "
                "FSS undefined"]
    others = len(curve) - len(missing)
    return [f"{where} at lead frame(s) {', '.join(map(str, missing))} ({FSS_UNDEFINED_BECAUSE}); its mean is over "
            f"the other {others} lead frame{'s' if others > 1 else ''}"]
