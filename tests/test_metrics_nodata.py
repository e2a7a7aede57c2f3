"""Metrics with no-data pixels (``valid`` masks) against independent NumPy computations of the masked scores:
MSE/MAE sums over pixels with data, SSIM/PSNR of frames set to the background there, POD/FAR/CSI/HSS counts over
pixels with data, the FSS with no-data pixels treated as outside the frame (no event, no box centred on them,
checked box by box), B-MSE/B-MAE with weight 0 there; a mask of ones changes nothing."""
import numpy as np
import pytest
from skimage.metrics import structural_similarity

from src.metrics import (BalancedErrors, FractionsSkillScore, SkillScores, StreamingMetrics, frame_metrics,
                         split_no_data)


def _case(seed=0, shape=(3, 2, 2, 12, 14)):
    """pred, target (B, T, C, H, W) in [0, 1], valid bool: a no-data block and scattered no-data pixels."""
    rng = np.random.default_rng(seed)
    pred = rng.random(shape)
    target = np.clip(pred + rng.normal(0, 0.25, shape), 0, 1)
    valid = rng.random(shape) > 0.2
    valid[0, :, :, 2:7, 3:9] = False  # a region without data
    return pred, np.where(valid, target, 0.0), valid


def test_masked_frame_metrics_against_numpy():
    pred, target, valid = _case(1)
    got = frame_metrics(pred, target, valid)
    err = (pred - target)[valid.nonzero()]  # the scored pixels only
    assert err.size < pred.size
    where = valid.nonzero()[:2]  # (sequence, frame) of every scored pixel
    mse, mae = np.zeros(pred.shape[:2]), np.zeros(pred.shape[:2])
    np.add.at(mse, where, err ** 2)
    np.add.at(mae, where, np.abs(err))
    np.testing.assert_allclose(got["mse"], mse, rtol=1e-12)
    np.testing.assert_allclose(got["mae"], mae, rtol=1e-12)
    p0, t0 = np.where(valid, pred, 0.0), np.where(valid, target, 0.0)  # both set to the background
    psnr = -10 * np.log10(((p0 - t0) ** 2).mean(axis=(2, 3, 4)))
    np.testing.assert_allclose(got["psnr"], psnr, rtol=1e-12)
    ssim = [[np.mean([structural_similarity(p0[b, t, c], t0[b, t, c], data_range=1.0) for c in range(2)])
             for t in range(2)] for b in range(3)]
    np.testing.assert_allclose(got["ssim"], ssim, rtol=1e-12)


def test_streaming_metrics_report_the_no_data_share_and_a_mask_of_ones_changes_nothing():
    pred, target, valid = _case(2)
    with_nan = np.where(valid, target, np.nan)
    filled, found = split_no_data(with_nan)
    assert np.array_equal(found, valid) and np.array_equal(filled, target)
    result = StreamingMetrics().update(pred, filled, found).result()
    assert result["no_data"]["no_data_values"] == int((~valid).sum())
    assert result["no_data"]["fraction"] == pytest.approx((~valid).mean())
    plain = StreamingMetrics().update(pred, target).result()
    ones = StreamingMetrics().update(pred, target, np.ones_like(valid)).result()
    assert "no_data" not in plain and ones["no_data"]["no_data_values"] == 0
    assert all(ones[k] == plain[k] for k in ("mse", "mae", "ssim", "psnr"))


def _contingency(pred, target, valid, threshold):
    """H, M, F, N per lead frame counted with NumPy over the pixels with data."""
    p, t = (pred >= threshold) & valid, (target >= threshold) & valid
    axes = (0, 2, 3, 4)
    hits = (p & t).sum(axis=axes)
    misses = (~p & t & valid).sum(axis=axes)
    false_alarms = (p & ~t & valid).sum(axis=axes)
    negatives = (~p & ~t & valid).sum(axis=axes)
    return hits, misses, false_alarms, negatives


def test_masked_skill_scores_against_numpy():
    pred, target, valid = _case(3)
    result = SkillScores([0.3, 0.7]).update(pred, target, valid).result()
    for entry in result["by_threshold"]:
        h, m, f, n = _contingency(pred, target, valid, entry["threshold"])
        counts = entry["per_lead_frame"]
        assert counts["hits"] == list(h) and counts["misses"] == list(m)
        assert counts["false_alarms"] == list(f) and counts["correct_negatives"] == list(n)
        np.testing.assert_allclose(entry["per_lead_frame"]["csi"], h / (h + m + f), rtol=1e-12)
    total = sum(sum(entry["per_lead_frame"][k]) for k in ("hits", "misses", "false_alarms", "correct_negatives")
                for entry in result["by_threshold"][:1])
    assert total == int(valid.sum())  # every pixel with data counted once, none without
    assert SkillScores([0.5]).update(pred, target, np.ones_like(valid)).result() == \
        SkillScores([0.5]).update(pred, target).result()


def _masked_fractions(events, valid, scale):
    """(H, W) fractions, box by box, with no-data pixels counted as no event."""
    height, width = events.shape
    field = events & valid
    out = np.zeros((height, width))
    for i in range(height):
        for j in range(width):
            top, left = i - scale // 2, j - scale // 2
            out[i, j] = np.count_nonzero(field[max(top, 0):max(top + scale, 0), max(left, 0):max(left + scale, 0)])
    return out / scale ** 2


def _masked_fss(pred, target, valid, threshold, scale, lead):
    """FSS of one lead frame: sums over the boxes centred on pixels with data only."""
    diff = fcst = obs = 0.0
    for b in range(pred.shape[0]):
        for c in range(pred.shape[2]):
            v = valid[b, lead, c]
            pf = _masked_fractions(pred[b, lead, c] >= threshold, v, scale)[v]
            po = _masked_fractions(target[b, lead, c] >= threshold, v, scale)[v]
            diff, fcst, obs = diff + ((pf - po) ** 2).sum(), fcst + (pf ** 2).sum(), obs + (po ** 2).sum()
    return 1.0 - diff / (fcst + obs)


def test_masked_fss_against_a_box_by_box_reference():
    pred, target, valid = _case(4)
    result = FractionsSkillScore([0.5], [1, 3, 4]).update(pred, target, valid).result()
    entry = result["by_threshold"][0]
    for scale_entry in entry["by_scale"]:
        expected = [_masked_fss(pred, target, valid, 0.5, scale_entry["scale"], lead) for lead in range(2)]
        np.testing.assert_allclose(scale_entry["per_lead_frame"]["fss"], expected, rtol=1e-12)
    observed = [((target[:, lead] >= 0.5) & valid[:, lead]).sum() / valid[:, lead].sum() for lead in range(2)]
    np.testing.assert_allclose(entry["per_lead_frame"]["observed_fraction"], observed, rtol=1e-12)
    plain = FractionsSkillScore([0.5], [3]).update(pred, target).result()
    assert FractionsSkillScore([0.5], [3]).update(pred, target, np.ones_like(valid)).result() == plain
    assert plain["by_threshold"][0]["by_scale"][0]["pooled"]["fss"] != \
        FractionsSkillScore([0.5], [3]).update(pred, target, valid).result()["by_threshold"][0]["by_scale"][0][
            "pooled"]["fss"]


def test_masked_balanced_errors_against_numpy():
    pred, target, valid = _case(5)
    units = target * 70 - 10  # dBZ
    result = BalancedErrors([20, 35], [1, 2, 5]).update(pred, target, units, valid).result()
    weight = np.where(units >= 35, 5.0, np.where(units >= 20, 2.0, 1.0)) * valid
    err = np.clip(pred, 0, 1) - target
    b_mse = (weight * err ** 2).sum(axis=(2, 3, 4)).mean(axis=0)  # (T,) means over sequences
    b_mae = (weight * np.abs(err)).sum(axis=(2, 3, 4)).mean(axis=0)
    np.testing.assert_allclose(result["per_frame"]["b_mse"], b_mse, rtol=1e-12)
    np.testing.assert_allclose(result["per_frame"]["b_mae"], b_mae, rtol=1e-12)
