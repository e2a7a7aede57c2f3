"""The score that chooses best.ckpt, early stopping and the plateau schedule (src/training/selection.py)."""
import math
import types

import numpy as np
import pytest

from src.config import load_config
from src.training.selection import ExtraScores, SelectionScore, next_best, selection_score

DBZ = dict(dataset="sequences", data_scale="minmax", data_min=-10, data_max=60)


def keep_best(score, values):
    """(best epoch, best value, epochs since it) after per-epoch ``values``, kept as the trainer keeps them."""
    best, best_epoch, stale = math.inf, 0, 0
    for epoch, value in enumerate(values, start=1):
        _, best, best_epoch, stale = next_best(score, value, epoch, best, best_epoch, stale)
    return best_epoch, best, stale


@pytest.mark.parametrize("keys, validates, label", [
    (dict(DBZ, loss="balanced"), True, "b-mse+b-mae"),
    (dict(DBZ, loss="balanced", ssim_weight=0.1), True, "b-mse+b-mae"),  # the SSIM term does not change it
    (dict(loss="mse"), True, "mse"),
    (dict(loss="bce", ssim_weight=0.15), True, "mse"),  # validation computes no BCE
    (dict(DBZ, loss="balanced"), False, "train loss"),
    (dict(DBZ, best_metric="csi@35"), True, "csi@35"),
    (dict(loss="balanced", loss_thresholds=[0.2, 0.5], loss_weights=[1, 2, 5], best_metric="ssim"), True, "ssim"),
])
def test_auto_is_the_losss_own_score_and_an_explicit_choice_wins(keys, validates, label):
    assert selection_score(load_config([], **keys), validates).label == label


# validation MSE prefers epoch 2, the balanced score (B-MSE + B-MAE) epoch 3
DISAGREEING = [dict(mse=100.0, b_mse=900.0, b_mae=2100.0), dict(mse=90.0, b_mse=1000.0, b_mae=2200.0),
               dict(mse=95.0, b_mse=800.0, b_mae=2000.0), dict(mse=97.0, b_mse=950.0, b_mae=1950.0)]


def test_balanced_score_and_mse_pick_their_own_epochs():
    balanced, mse = SelectionScore("bmse_bmae"), SelectionScore("mse")
    assert keep_best(balanced, [balanced.value(v, None) for v in DISAGREEING]) == (3, 2800.0, 1)
    assert keep_best(mse, [mse.value(v, None) for v in DISAGREEING]) == (2, 90.0, 2)


def test_higher_is_better_scores_keep_the_highest_and_a_tie_is_no_improvement():
    ssim = SelectionScore("ssim")
    assert ssim.higher_is_better and not SelectionScore("mae").higher_is_better
    assert keep_best(ssim, [0.5, 0.7, 0.6, 0.7]) == (2, 0.7, 2)
    assert keep_best(SelectionScore("mse"), [0.5, 0.7, 0.6, 0.7]) == (1, 0.5, 3)
    assert ssim.as_loss(0.7) == -0.7 and SelectionScore("mse").as_loss(0.7) == 0.7  # plateau: lower is better


def test_an_undefined_csi_never_improves_and_counts_as_a_stale_epoch():
    csi = SelectionScore("csi", 35.0)
    assert csi.label == "csi@35" and csi.higher_is_better
    values = [csi.value(v, None) for v in ({"csi@35": None}, {"csi@35": 0.3}, {"csi@35": 0.2}, {"csi@35": None})]
    assert math.isnan(values[0])
    assert keep_best(csi, values[:1]) == (0, math.inf, 1)  # nothing yet
    assert keep_best(csi, values) == (2, 0.3, 2)


def test_without_validation_the_train_loss_chooses():
    score = SelectionScore("train_loss")
    assert score.value(None, 0.25) == 0.25 and not score.needs_extra_scores


def test_extra_scores_are_eval_pys_balanced_errors_and_csi():
    """Validation's B-MSE/B-MAE and CSI are those eval.py prints for the same batches (BatchExtras)."""
    from src.data.sequences import make_normalization
    from src.evaluation import MAIN, BatchExtras
    from src.metrics import balance_of

    cfg = load_config([], **DBZ)
    normalization = make_normalization("float32", "minmax", -10, 60)
    source = types.SimpleNamespace(normalization=normalization)
    rng = np.random.default_rng(0)
    extras = [ExtraScores(SelectionScore("bmse_bmae"), cfg, source), ExtraScores(SelectionScore("csi", 35.0), cfg,
                                                                                  source)]
    reference = BatchExtras([35.0], 4, to_units=normalization.denormalize, balance=balance_of(cfg))
    for start in (0, 3):
        targets = rng.uniform(0, 1, (3, 4, 1, 8, 8)).astype(np.float32)  # (B, T, C, H, W)
        pred = np.clip(targets + rng.normal(0, 0.2, targets.shape), -0.1, 1.1).astype(np.float32)  # beyond [0, 1]
        for hook in extras + [reference]:
            hook(start, None, targets, pred)
    expected = reference.skill_results()[MAIN]
    balanced, csi = extras[0].result(), extras[1].result()
    assert balanced == {"b_mse": expected["balanced"]["b_mse"], "b_mae": expected["balanced"]["b_mae"]}
    assert csi == {"csi@35": expected["by_threshold"][0]["mean_over_lead_frames"]["csi"]}
    assert 0 < csi["csi@35"] < 1 and balanced["b_mse"] > 0
