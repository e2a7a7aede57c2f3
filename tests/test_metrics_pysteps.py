"""The skill scores of src/metrics.py against pysteps' independent implementation (det_cat_fct).

The conventions differ on one point: an event here is ``value >= threshold`` (HKO-7), in pysteps
``value > threshold``. On values that never equal a threshold the two agree exactly; on values that
do, ours at ``t`` equals pysteps at the next float32 below ``t``.

pysteps is optional (requirements-pysteps.txt, installed by requirements-test.txt); without it the
module is skipped.
"""
import numpy as np
import pytest

from src.metrics import SkillScores

det_cat_fct = pytest.importorskip("pysteps.verification.detcatscores").det_cat_fct

SCORES = {"pod": "POD", "far": "FAR", "csi": "CSI", "hss": "HSS"}


def _radar_like(seed, on_thresholds, shape=(3, 4, 2, 16, 20)):
    """dBZ-like pairs (B, T, C, H, W): echoes with correlated errors; with ``on_thresholds`` 5 % of
    the values are set to exactly 20 and to 35, else no value equals a threshold."""
    rng = np.random.default_rng(seed)
    target = rng.gamma(2.0, 9.0, size=shape).astype(np.float32) - 5.0
    pred = target + rng.normal(0.0, 6.0, size=shape).astype(np.float32)
    for array in (pred, target):
        on = np.isin(array, [20.0, 35.0])
        array[on] += 0.25  # none by chance
        if on_thresholds:
            array[rng.random(shape) < 0.05] = 20.0
            array[rng.random(shape) < 0.05] = 35.0
    return pred, target


def _pysteps_threshold(threshold, on_thresholds):
    """The pysteps threshold that defines the same events as ours (``>`` vs ``>=``)."""
    return float(np.nextafter(np.float32(threshold), np.float32(-np.inf))) if on_thresholds else threshold


@pytest.mark.parametrize("seed, on_thresholds", [(0, False), (1, False), (2, True), (3, True)])
def test_scores_per_lead_frame_equal_pysteps_det_cat_fct(seed, on_thresholds):
    pred, target = _radar_like(seed, on_thresholds)
    thresholds = [20.0, 35.0]
    ours = SkillScores(thresholds).update(pred[:2], target[:2]).update(pred[2:], target[2:]).result()
    for entry, threshold in zip(ours["by_threshold"], thresholds):
        for lead in range(pred.shape[1]):
            theirs = det_cat_fct(pred[:, lead], target[:, lead], _pysteps_threshold(threshold, on_thresholds),
                                 scores=list(SCORES.values()))
            for name, key in SCORES.items():
                assert entry["per_lead_frame"][name][lead] == pytest.approx(theirs[key], rel=1e-9), \
                    (threshold, lead, name)


def test_pooled_scores_equal_pysteps_over_all_lead_frames():
    pred, target = _radar_like(4, on_thresholds=False)
    ours = SkillScores([20.0]).update(pred, target).result()["by_threshold"][0]["pooled"]
    theirs = det_cat_fct(pred, target, 20.0, scores=list(SCORES.values()))
    for name, key in SCORES.items():
        assert ours[name] == pytest.approx(theirs[key], rel=1e-9), name


def test_a_value_on_the_threshold_is_an_event_here_and_not_in_pysteps():
    target = np.array([[[[20.0, 19.999, 20.0, 25.0]]]], dtype=np.float32)  # (B, T, H, W)
    pred = np.array([[[[20.0, 20.0, 19.999, 25.0]]]], dtype=np.float32)
    ours = SkillScores([20.0]).update(pred, target).result()["by_threshold"][0]["per_lead_frame"]
    assert (ours["hits"], ours["misses"], ours["false_alarms"]) == ([2], [1], [1])
    assert det_cat_fct(pred, target, 20.0, scores=["CSI"])["CSI"] == 1.0  # only the 25s are events
    shifted = det_cat_fct(pred, target, _pysteps_threshold(20.0, True), scores=["CSI"])["CSI"]
    assert ours["csi"][0] == pytest.approx(shifted) == pytest.approx(2 / 4)
