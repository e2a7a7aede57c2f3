"""The skill scores of src/metrics.py against pysteps' independent implementations (det_cat_fct; FSS:
spatialscores.fss and fss_init/fss_accum/fss_compute).

The conventions differ on one point: an event here is ``value >= threshold`` (HKO-7), in pysteps'
det_cat_fct ``value > threshold`` (its FSS uses ``>=``, as here). On values that never equal a threshold
the two agree exactly; on values that do, ours at ``t`` equals det_cat_fct at the next float32 below ``t``.

pysteps is optional (requirements-pysteps.txt, installed by requirements-test.txt); without it the
module is skipped.
"""
import numpy as np
import pytest

from src.metrics import FractionsSkillScore, SkillScores

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


# ---------------------------------------------------------------- fractions skill score

# pysteps' FSS (spatialscores.fss_accum) takes the event as value >= threshold, as this project does, and
# computes fractions with scipy's uniform_filter(mode="constant", cval=0.0): zero padding and the same box
# placement for even scales; so both agree on every value, including values exactly on a threshold.
spatialscores = pytest.importorskip("pysteps.verification.spatialscores")
FSS_SCALES = [1, 2, 5, 15, 45]  # 45: boxes beyond twice the side of the 16 x 20 frames


def _fss_result(pred, target, thresholds, batches=((0, 2), (2, 3))):
    acc = FractionsSkillScore(thresholds, FSS_SCALES)
    for lo, hi in batches:
        acc.update(pred[lo:hi], target[lo:hi])
    return acc.result()


@pytest.mark.parametrize("seed, on_thresholds", [(5, False), (6, True)])
def test_fss_of_single_frames_equals_pysteps_fss(seed, on_thresholds):
    pred, target = _radar_like(seed, on_thresholds)
    for b, lead, c in ((0, 0, 0), (2, 3, 1), (1, 2, 0)):
        frame_pred, frame_target = pred[b, lead, c], target[b, lead, c]  # (H, W)
        ours = FractionsSkillScore([20.0, 35.0], FSS_SCALES).update(frame_pred[None, None], frame_target[None, None])
        for entry in ours.result()["by_threshold"]:
            for scale in entry["by_scale"]:
                theirs = spatialscores.fss(frame_pred, frame_target, entry["threshold"], scale["scale"])
                assert scale["pooled"]["fss"] == pytest.approx(theirs, rel=1e-9, abs=1e-12), \
                    (b, lead, c, entry["threshold"], scale["scale"])


@pytest.mark.parametrize("seed, on_thresholds", [(7, False), (8, True)])
def test_fss_pooled_per_lead_frame_and_overall_equals_pysteps_accumulation(seed, on_thresholds):
    pred, target = _radar_like(seed, on_thresholds)  # (B, T, C, H, W)
    batch, lead_frames, channels = pred.shape[:3]
    ours = _fss_result(pred, target, [20.0, 35.0])
    for entry in ours["by_threshold"]:
        for scale in entry["by_scale"]:
            overall = spatialscores.fss_init(entry["threshold"], scale["scale"])
            for lead in range(lead_frames):
                per_lead = spatialscores.fss_init(entry["threshold"], scale["scale"])
                for b in range(batch):
                    for c in range(channels):  # every channel a field of its own
                        spatialscores.fss_accum(per_lead, pred[b, lead, c], target[b, lead, c])
                        spatialscores.fss_accum(overall, pred[b, lead, c], target[b, lead, c])
                assert scale["per_lead_frame"]["fss"][lead] == pytest.approx(
                    spatialscores.fss_compute(per_lead), rel=1e-9), (entry["threshold"], scale["scale"], lead)
                assert scale["per_lead_frame"]["sum_fcst_sq"][lead] == pytest.approx(per_lead["sum_fct_sq"], rel=1e-9)
                assert scale["per_lead_frame"]["sum_obs_sq"][lead] == pytest.approx(per_lead["sum_obs_sq"], rel=1e-9)
            assert scale["pooled"]["fss"] == pytest.approx(spatialscores.fss_compute(overall), rel=1e-9)
