"""The Fractions Skill Score of src/metrics.py (Roberts and Lean 2008) against hand-computed cases and a
direct pixel-by-pixel reference (explicit loops over every box, no cumulative sums).

The reference follows the definition: the fraction of a pixel is the number of events in the n x n box
around it (rows i - n//2 .. i - n//2 + n - 1, likewise columns; outside the frame counts as no event)
divided by n^2; FSS = 1 - sum (Pf - Po)^2 / (sum Pf^2 + sum Po^2), sums over the pooled fields.
"""
import json

import numpy as np
import pytest

from src.errors import DataError
from src.metrics import FractionsSkillScore, box_counts, check_fss_scales


def naive_fractions(field, scale):
    """(H, W) bool -> float64 (H, W) fractions, one box at a time (its part inside the frame)."""
    height, width = field.shape
    out = np.zeros((height, width))
    for i in range(height):
        for j in range(width):
            top, left = i - scale // 2, j - scale // 2
            inside = field[max(top, 0):max(top + scale, 0), max(left, 0):max(left + scale, 0)]
            out[i, j] = np.count_nonzero(inside) / scale ** 2
    return out


def naive_sums(pred, target, threshold, scale):
    """(diff, fcst, obs) sums over a list of (H, W) field pairs."""
    diff = fcst = obs = 0.0
    for p, t in zip(pred, target):
        pf, po = naive_fractions(p >= threshold, scale), naive_fractions(t >= threshold, scale)
        diff += ((pf - po) ** 2).sum()
        fcst += (pf ** 2).sum()
        obs += (po ** 2).sum()
    return diff, fcst, obs


def naive_fss(pred, target, threshold, scale):
    diff, fcst, obs = naive_sums(pred, target, threshold, scale)
    return None if fcst + obs == 0 else 1.0 - diff / (fcst + obs)


def fields_of_lead(array, lead):
    """The (H, W) fields of one lead frame of (B, T, C, H, W): every sequence and channel."""
    return [array[b, lead, c] for b in range(array.shape[0]) for c in range(array.shape[2])]


def one_frame(field):
    return np.asarray(field, dtype=np.float64)[np.newaxis, np.newaxis, np.newaxis]  # (1, 1, 1, H, W)


def scale_entry(result, threshold, scale):
    entry = next(e for e in result["by_threshold"] if e["threshold"] == threshold)
    return next(s for s in entry["by_scale"] if s["scale"] == scale)


def test_a_perfect_forecast_scores_one_at_every_scale():
    rng = np.random.default_rng(0)
    target = rng.gamma(2.0, 10.0, (2, 3, 1, 12, 10))  # (B, T, C, H, W)
    result = FractionsSkillScore([20, 35], [1, 3, 4, 30]).update(target.copy(), target).result()
    for entry in result["by_threshold"]:
        assert entry["notes"] == []
        for s in entry["by_scale"]:
            assert s["per_lead_frame"]["fss"] == [1.0] * 3 and s["pooled"]["fss"] == 1.0
            assert s["per_lead_frame"]["sum_sq_diff"] == [0.0] * 3


def test_disjoint_events_score_zero_at_one_pixel_and_more_at_larger_scales():
    target, pred = np.zeros((9, 9)), np.zeros((9, 9))
    target[4, 3] = pred[4, 6] = 30.0  # three pixels apart
    result = FractionsSkillScore([20], [1, 3, 5, 9]).update(one_frame(pred), one_frame(target)).result()
    fss = {n: scale_entry(result, 20, n)["pooled"]["fss"] for n in (1, 3, 5, 9)}
    assert fss[1] == 0.0 and fss[3] == 0.0  # boxes of 3 never hold both events
    assert 0 < fss[5] < fss[9] < 1
    for n in (5, 9):
        assert fss[n] == pytest.approx(naive_fss([pred], [target], 20, n), rel=1e-12)


def test_a_hand_computed_three_by_three_case():
    """Observed event in the centre, forecast one in the corner of a 3 x 3 frame.

    n=1: counts differ at 2 pixels, 1 event each: FSS 1 - 2/2 = 0.
    n=3: the centre is in every box (co = 1 at 9 pixels), the corner in the boxes of the top-left 2 x 2
         pixels (cf = 1 at 4): sum (cf-co)^2 = 5, sum cf^2 = 4, sum co^2 = 9: FSS 1 - 5/13 = 8/13.
    n=2: a box spans i-1..i: the centre counts at the 4 pixels (1..2, 1..2), the corner at (0..1, 0..1);
         they share pixel (1, 1): sum (cf-co)^2 = 6, 4 + 4: FSS 1 - 6/8 = 1/4.
    Sums are reported in fraction units (counts / n^2, squared)."""
    target, pred = np.zeros((3, 3)), np.zeros((3, 3))
    target[1, 1] = pred[0, 0] = 1.0
    result = FractionsSkillScore([0.5], [1, 2, 3]).update(one_frame(pred), one_frame(target)).result()
    assert scale_entry(result, 0.5, 1)["pooled"]["fss"] == 0.0
    assert scale_entry(result, 0.5, 2)["pooled"]["fss"] == pytest.approx(1 / 4, rel=1e-15)
    three = scale_entry(result, 0.5, 3)
    assert three["pooled"]["fss"] == pytest.approx(8 / 13, rel=1e-15)
    assert three["per_lead_frame"]["sum_sq_diff"] == [pytest.approx(5 / 81)]
    assert (three["pooled"]["sum_fcst_sq"], three["pooled"]["sum_obs_sq"]) == pytest.approx((4 / 81, 9 / 81))
    entry = result["by_threshold"][0]
    assert entry["observed_fraction"] == pytest.approx(1 / 9)
    assert entry["uniform_fss"] == pytest.approx(0.5 + 1 / 18)  # Roberts and Lean's useful-skill level
    assert entry["smallest_useful_scale"] == 3  # 8/13 = 0.615 >= 0.556; 1/4 is not


@pytest.mark.parametrize("scales", [[1, 2, 3, 6], [5, 40]])
def test_random_fields_equal_the_box_by_box_reference(scales):
    rng = np.random.default_rng(len(scales))
    target = rng.choice([0.0, 10.0, 20.0, 27.0, 35.0, 50.0], size=(2, 2, 2, 11, 13))  # 20 and 35 exactly
    pred = np.where(rng.random(target.shape) < 0.3, rng.choice([0.0, 20.0, 40.0], target.shape), target)
    result = FractionsSkillScore([35, 20], scales).update(pred, target).result()
    assert result["thresholds"] == [20.0, 35.0] and result["scales"] == sorted(scales)
    for threshold in (20.0, 35.0):
        for n in scales:
            got = scale_entry(result, threshold, n)
            for lead in range(2):
                fields = fields_of_lead(pred, lead), fields_of_lead(target, lead)
                want = naive_sums(*fields, threshold, n)
                assert got["per_lead_frame"]["fss"][lead] == pytest.approx(naive_fss(*fields, threshold, n),
                                                                           rel=1e-12)
                for name, value in zip(FractionsSkillScore.SUMS, want):
                    assert got["per_lead_frame"][name][lead] == pytest.approx(value, rel=1e-12)
            everything = [f for lead in range(2) for f in fields_of_lead(pred, lead)], \
                [f for lead in range(2) for f in fields_of_lead(target, lead)]
            assert got["pooled"]["fss"] == pytest.approx(naive_fss(*everything, threshold, n), rel=1e-12)
            curve = got["per_lead_frame"]["fss"]
            assert got["mean_over_lead_frames"]["fss"] == pytest.approx(sum(curve) / 2, rel=1e-15)
        entry = next(e for e in result["by_threshold"] if e["threshold"] == threshold)
        assert entry["observed_fraction"] == pytest.approx(float((target >= threshold).mean()), rel=1e-15)
        assert entry["per_lead_frame"]["observed_fraction"] == pytest.approx(
            list((target >= threshold).mean(axis=(0, 2, 3, 4))), rel=1e-15)


def test_box_counts_equal_the_reference_on_frames_smaller_than_the_box():
    events = np.random.default_rng(7).random((3, 5, 4)) < 0.4  # (N, H, W)
    for n in (1, 2, 5, 8, 11):
        got = box_counts(events, n)
        assert got.dtype == np.int32
        for k in range(3):
            np.testing.assert_array_equal(got[k], np.rint(naive_fractions(events[k], n) * n * n).astype(int))


def test_streaming_over_batches_equals_one_batch_exactly():
    rng = np.random.default_rng(3)
    target = rng.gamma(1.5, 12.0, (6, 3, 2, 10, 9))  # (B, T, C, H, W)
    pred = target + rng.normal(0.0, 8.0, target.shape)
    whole = FractionsSkillScore([15, 30], [1, 4, 7]).update(pred, target).result()
    acc = FractionsSkillScore([15, 30], [1, 4, 7])
    for lo, hi in ((0, 1), (1, 1), (1, 4), (4, 6)):
        acc.update(pred[lo:hi], target[lo:hi])
    assert acc.num_sequences == 6 and acc.result() == whole


def test_channels_are_separate_fields():
    """An event in channel 0 and a forecast one at the same pixel of channel 1 never meet."""
    target, pred = np.zeros((1, 1, 2, 7, 7)), np.zeros((1, 1, 2, 7, 7))
    target[0, 0, 0, 3, 3] = pred[0, 0, 1, 3, 3] = 1.0
    result = FractionsSkillScore([0.5], [1, 7]).update(pred, target).result()
    assert [s["pooled"]["fss"] for s in result["by_threshold"][0]["by_scale"]] == [0.0, 0.0]
    merged = FractionsSkillScore([0.5], [7]).update(pred.max(axis=2), target.max(axis=2)).result()
    assert merged["by_threshold"][0]["by_scale"][0]["pooled"]["fss"] == 1.0  # what mixing channels would give


def test_no_event_in_forecast_nor_observation_is_undefined_with_a_note():
    target = np.zeros((2, 3, 1, 6, 6))
    target[0, 1, 0, 2, 2] = 5.0  # an event at lead frame 2 only
    pred = target.copy()
    result = FractionsSkillScore([1.0, 9.0], [1, 3]).update(pred, target).result()
    low, high = result["by_threshold"]
    for s in low["by_scale"]:
        assert s["per_lead_frame"]["fss"] == [None, 1.0, None]
        assert s["mean_over_lead_frames"]["fss"] == 1.0 and s["pooled"]["fss"] == 1.0
    assert low["notes"] == ["FSS at threshold 1 undefined at every scale at lead frame(s) 1, 3 (no event in "
                            "forecast nor observation); its mean is over the other 1 lead frame"]
    for s in high["by_scale"]:
        assert s["per_lead_frame"]["fss"] == [None] * 3
        assert s["mean_over_lead_frames"]["fss"] is None and s["pooled"]["fss"] is None
    assert len(high["notes"]) == 1 and "every lead frame" in high["notes"][0]
    assert high["observed_fraction"] == 0.0 and high["smallest_useful_scale"] is None
    assert json.loads(json.dumps(result, allow_nan=False)) == result  # no NaN anywhere


def test_a_forecast_without_events_scores_zero_not_undefined():
    target = np.zeros((1, 1, 1, 5, 5))
    target[..., 2, 2] = 1.0
    result = FractionsSkillScore([0.5], [1, 5]).update(np.zeros_like(target), target).result()
    assert [s["pooled"]["fss"] for s in result["by_threshold"][0]["by_scale"]] == [0.0, 0.0]


@pytest.mark.parametrize("scales, fragment", [
    ([], "at least one"), ([0, 3], "positive integers"), ([3, 3], "differ"), ([1.5], "positive integers"),
    ([True], "positive integers"), (5, "list of positive")])
def test_bad_scales_are_rejected(scales, fragment):
    with pytest.raises(ValueError, match=fragment):
        check_fss_scales(scales)
    with pytest.raises(ValueError, match=fragment):
        FractionsSkillScore([1.0], scales)


def test_bad_inputs_are_one_line_data_errors():
    acc = FractionsSkillScore([1.0], [3]).update(np.zeros((1, 2, 4, 4)), np.zeros((1, 2, 4, 4)))
    cases = [((np.full((1, 2, 4, 4), np.nan), np.zeros((1, 2, 4, 4))), "NaN"),
             ((np.zeros((1, 2, 4, 4)), np.zeros((1, 2, 4, 5))), "shapes differ"),
             ((np.zeros((1, 3, 4, 4)), np.zeros((1, 3, 4, 4))), "earlier batches"),
             ((np.zeros((4, 4)), np.zeros((4, 4))), r"\(B, T, C, H, W\)")]
    for (pred, target), fragment in cases:
        with pytest.raises(DataError, match=fragment) as err:
            acc.update(pred, target)
        assert "\n" not in str(err.value)
    assert acc.num_sequences == 1
    with pytest.raises(ValueError, match="no sequences"):
        FractionsSkillScore([1.0], [1]).result()
    with pytest.raises(DataError, match="too large for an exact FSS"):
        FractionsSkillScore([1.0], [4000]).update(np.zeros((1, 1, 1, 1500, 1500)), np.zeros((1, 1, 1, 1500, 1500)))


def test_boxes_of_more_than_46341_events_are_summed_without_int32_overflow():
    """A 216 x 216 frame wet everywhere at scale 216: box counts up to 46,656, squares above 2^31."""
    from scipy.ndimage import uniform_filter

    target = np.ones((216, 216))
    pred = np.zeros((216, 216))
    pred[:, :108] = 1.0
    result = FractionsSkillScore([0.5], [216]).update(one_frame(pred), one_frame(target)).result()
    pf = uniform_filter(pred, size=216, mode="constant", cval=0.0)  # scipy's fractions as the reference
    po = uniform_filter(target, size=216, mode="constant", cval=0.0)
    pooled = result["by_threshold"][0]["by_scale"][0]["pooled"]
    assert pooled["sum_fcst_sq"] == pytest.approx((pf ** 2).sum(), rel=1e-9)
    assert pooled["sum_obs_sq"] == pytest.approx((po ** 2).sum(), rel=1e-9)
    assert pooled["fss"] == pytest.approx(1 - ((pf - po) ** 2).sum() / ((pf ** 2).sum() + (po ** 2).sum()), rel=1e-9)
