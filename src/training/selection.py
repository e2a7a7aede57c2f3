"""The score that chooses ``best.ckpt``, counts epochs for ``early_stop_patience`` and drives the plateau
schedule (config key ``best_metric``). ``auto`` is the training loss's own validation score: B-MSE + B-MAE
(HKO-7, with the loss's classes) for ``loss: balanced``, MSE for ``mse`` and ``bce`` (validation does not
compute BCE). ``ssim_weight`` does not change it: the SSIM term is a regulariser against grey haze whose
weight the recipes tune by its effect on the pixel score (configs/cpu_small.yaml), and the loss's sum of a
per-value pixel mean and ssim_weight x (1 - SSIM) has no validation counterpart for bce, so a combined
score would mix scales the weight was never tuned for; select on SSIM with ``best_metric: ssim``. Without
validation (``val_sequences: 0``) the epoch's mean training loss chooses. The validation numbers come from
src/metrics.py, as eval.py computes them."""
import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from src.config import parse_best_metric
from src.evaluation import scored_targets, units_of
from src.metrics import BalancedErrors, SkillScores, balance_of

FRAME_SCORES = ("mse", "mae", "ssim", "psnr")  # computed by every validation (StreamingMetrics)
HIGHER_IS_BETTER = ("ssim", "psnr", "csi")
TRAIN_LOSS = "train loss"  # the label of the score of a run without validation


@dataclass(frozen=True)
class SelectionScore:
    """One score: ``name`` as in the config (mse, bmse_bmae, csi, ...; ``train_loss`` without validation),
    ``threshold`` for csi, ``label`` as printed and recorded (``b-mse+b-mae``, ``csi@35``)."""

    name: str
    threshold: Optional[float] = None

    @property
    def label(self):
        if self.name == "csi":
            return f"csi@{self.threshold:g}"
        return {"bmse_bmae": "b-mse+b-mae", "train_loss": TRAIN_LOSS}.get(self.name, self.name)

    @property
    def higher_is_better(self):
        return self.name in HIGHER_IS_BETTER

    @property
    def needs_extra_scores(self):
        """True when validation must score more than its frame metrics (balanced errors, CSI)."""
        return self.name in ("bmse_bmae", "csi")

    def value(self, val, train_loss):
        """This score of one epoch: ``val`` a validation result (``validate()``), None without validation.
        NaN when it is undefined (CSI without any event), which never counts as an improvement."""
        if self.name == "train_loss":
            return float(train_loss)
        if self.name == "bmse_bmae":
            return float(val["b_mse"] + val["b_mae"])
        raw = val[self.label] if self.name == "csi" else val[self.name]
        return float("nan") if raw is None else float(raw)

    def improves(self, score, best):
        """Whether ``score`` beats ``best`` (None or infinite: nothing yet; a NaN score never does)."""
        if not math.isfinite(score):
            return False
        if best is None or not math.isfinite(best):
            return True
        return score > best if self.higher_is_better else score < best

    def as_loss(self, score):
        """The score as "lower is better" (the plateau schedule compares that way)."""
        return -score if self.higher_is_better else score


def selection_score(cfg, validates=True):
    """The SelectionScore of ``cfg.best_metric`` (``validates``: the run has a validation set)."""
    name, threshold = parse_best_metric(cfg.best_metric)
    if not validates:
        return SelectionScore("train_loss")  # config refuses an explicit best_metric without validation
    if name == "auto":
        name = "bmse_bmae" if cfg.loss == "balanced" else "mse"
    return SelectionScore(name, threshold)


def next_best(score, value, epoch, best, best_epoch, stale):
    """(improved, best, best_epoch, stale) after epoch ``epoch`` (1-based) scored ``value`` on ``score``, from
    the best value so far (None or infinite: none yet), its epoch and the epochs since it (``stale``)."""
    if score.improves(value, best):
        return True, value, epoch, 0
    return False, best, best_epoch, stale + 1


class ExtraScores:
    """An ``evaluate(on_batch=...)`` hook scoring what the frame metrics lack: B-MSE/B-MAE with the loss's
    classes (src.metrics.balance_of) or the CSI at one threshold, in the units of ``source``'s data."""

    def __init__(self, score, cfg, source):
        self.score, self.cfg = score, cfg
        self.to_units, _ = units_of(cfg, source)
        self.balanced = BalancedErrors(*balance_of(cfg)) if score.name == "bmse_bmae" else None
        self.skill = SkillScores([score.threshold]) if score.name == "csi" else None

    def __call__(self, start, inputs, targets, pred):
        if targets is None:
            return
        targets, valid = scored_targets(self.cfg, targets)  # NaN (no data) set to 0 and left out by ``valid``
        truth = self.to_units(targets)  # (B, T_out, C, H, W) in the data's units
        if self.balanced is not None:
            self.balanced.update(pred, targets, truth, valid)
        if self.skill is not None:
            self.skill.update(self.to_units(np.clip(pred, 0.0, 1.0)), truth, valid)

    def result(self):
        """{"b_mse", "b_mae"} or {"csi@T": mean CSI over lead frames, None if undefined}."""
        if self.balanced is not None:
            errors = self.balanced.result()
            return {"b_mse": errors["b_mse"], "b_mae": errors["b_mae"]}
        scores = self.skill.result()["by_threshold"][0]["mean_over_lead_frames"]
        return {self.score.label: scores["csi"]}
