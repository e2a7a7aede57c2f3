"""Tests of src/metrics.py against the metric and skill-score definitions in the README (Evaluation) and docs/own_data.md."""
import json
import math
from fractions import Fraction

import numpy as np
import pytest
from skimage.metrics import structural_similarity

from src.errors import DataError
from src.metrics import (PSNR_CAP_DB, SkillScores, StreamingMetrics, contingency_scores,
                         format_skill_table, format_table, frame_metrics)
from tests.metrics_state import from_state_dict, merge, state_dict


def compute_metrics(pred, target):
    """The metrics of one array pair: ``StreamingMetrics`` fed once."""
    return StreamingMetrics().update(pred, target).result()


def _random_pair(b=3, t=4, h=64, w=64, seed=0):
    rng = np.random.default_rng(seed)
    target = rng.random((b, t, 1, h, w)).astype(np.float32)
    pred = np.clip(target + rng.normal(0, 0.2, target.shape), 0, 1).astype(np.float32)
    return pred, target


def test_identical_frames_are_perfect():
    _, target = _random_pair()
    r = compute_metrics(target, target)
    assert r["mse"] == 0.0 and r["mae"] == 0.0
    assert r["ssim"] == pytest.approx(1.0, abs=1e-12)
    assert r["psnr"] == pytest.approx(PSNR_CAP_DB) and PSNR_CAP_DB == pytest.approx(100.0)
    assert r["per_frame"]["psnr"] == pytest.approx([100.0] * 4)


@pytest.mark.parametrize("d", [0.1, 0.25])
def test_constant_offset_gives_pixel_sums(d):
    target = np.full((2, 3, 1, 64, 64), 0.5)
    r = compute_metrics(target + d, target)
    assert r["mse"] == pytest.approx(4096 * d * d, rel=1e-9)
    assert r["mae"] == pytest.approx(4096 * d, rel=1e-9)
    assert r["psnr"] == pytest.approx(-10 * math.log10(d * d), rel=1e-9)
    assert r["num_sequences"] == 2
    assert len(r["per_frame"]["mse"]) == 3


def test_predictions_are_clipped_to_unit_range():
    target = np.ones((1, 2, 64, 64))
    r = compute_metrics(np.full_like(target, 1.5), target)
    assert r["mse"] == 0.0 and r["mae"] == 0.0
    r = compute_metrics(np.full_like(target, -0.5), np.zeros_like(target))
    assert r["mae"] == 0.0


def test_ssim_matches_direct_skimage_calls():
    pred, target = _random_pair(b=2, t=3, seed=1)
    got = frame_metrics(pred, target)["ssim"]  # (B, T)
    for i in range(2):
        for j in range(3):
            want = structural_similarity(pred[i, j, 0].astype(np.float64),
                                         target[i, j, 0].astype(np.float64), data_range=1.0)
            assert got[i, j] == pytest.approx(want, abs=1e-12)
    # data_range matters: the old implicit 2.0 gives a higher value
    old = structural_similarity(pred[0, 0, 0].astype(np.float64),
                                target[0, 0, 0].astype(np.float64), data_range=2.0)
    assert old > got[0, 0] + 1e-3


def test_averages_are_means_of_per_sequence_frame_values():
    pred, target = _random_pair(b=3, t=4, seed=2)
    per = frame_metrics(pred, target)
    r = compute_metrics(pred, target)
    for k in ("mse", "mae", "ssim", "ssim_openstl", "psnr"):
        assert r[k] == pytest.approx(per[k].mean(), rel=1e-12)
        assert r["per_frame"][k] == pytest.approx(list(per[k].mean(axis=0)), rel=1e-12)
    # PSNR is averaged per frame, not computed from the average MSE
    assert r["psnr"] != pytest.approx(-10 * math.log10(r["mse"] / 4096), rel=1e-6)


def test_streaming_uneven_batches_equals_one_shot():
    pred, target = _random_pair(b=7, t=3, seed=3)
    one_shot = compute_metrics(pred, target)
    acc = StreamingMetrics()
    for lo, hi in ((0, 1), (1, 4), (4, 4), (4, 7)):
        acc.update(pred[lo:hi], target[lo:hi])
    streamed = acc.result()
    assert streamed["num_sequences"] == 7
    for k in ("mse", "mae", "ssim", "ssim_openstl", "psnr"):
        assert streamed[k] == pytest.approx(one_shot[k], rel=1e-12)
        assert streamed["per_frame"][k] == pytest.approx(one_shot["per_frame"][k], rel=1e-12)


def test_merge_and_state_dict_combine_parts():
    pred, target = _random_pair(b=5, t=2, seed=4)
    whole = compute_metrics(pred, target)
    a = StreamingMetrics().update(pred[:2], target[:2])
    b = StreamingMetrics().update(pred[2:], target[2:])
    restored = from_state_dict(json.loads(json.dumps(state_dict(b))))
    merged = merge(merge(StreamingMetrics(), a), restored).result()
    assert merged["num_sequences"] == 5
    for k in ("mse", "ssim", "ssim_openstl"):
        assert merged[k] == pytest.approx(whole[k], rel=1e-12)
    with pytest.raises(ValueError, match="same frames"):
        merge(a, StreamingMetrics().update(pred[:, :1], target[:, :1]))


def test_error_in_one_frame_shows_only_at_that_index():
    target = np.zeros((2, 5, 1, 64, 64), dtype=np.float32)
    pred = target.copy()
    pred[:, 3, 0, 10:20, 10:20] = 1.0  # 100 wrong pixels in frame index 3
    curve = compute_metrics(pred, target)["per_frame"]
    assert curve["mse"] == [0.0, 0.0, 0.0, 100.0, 0.0]
    assert curve["mae"] == [0.0, 0.0, 0.0, 100.0, 0.0]
    assert [s < 1.0 for s in curve["ssim"]] == [False, False, False, True, False]
    assert [p < PSNR_CAP_DB for p in curve["psnr"]] == [False, False, False, True, False]


def test_both_shape_forms_give_the_same_result():
    pred, target = _random_pair(b=2, t=2, seed=5)
    five = compute_metrics(pred, target)
    four = compute_metrics(pred[:, :, 0], target[:, :, 0])
    assert five == four


@pytest.mark.parametrize("pred_shape,target_shape,match", [
    ((2, 3, 1, 64, 64), (2, 4, 1, 64, 64), "shapes differ"),
    ((2, 3, 64, 64), (2, 3, 64, 32), "shapes differ"),
    ((2, 3, 0, 64, 64), (2, 3, 0, 64, 64), "no channel"),
    ((2, 3, 2, 64, 64), (2, 3, 1, 64, 64), "shapes differ"),
    ((3, 64, 64), (3, 64, 64), r"\(B, T, C, H, W\)"),
    ((1, 2, 6, 64), (1, 2, 6, 64), "too small for SSIM"),
])
def test_bad_shapes_are_rejected(pred_shape, target_shape, match):
    with pytest.raises(DataError, match=match):  # a DataError: one 'error:' line from the tools
        StreamingMetrics().update(np.zeros(pred_shape), np.zeros(target_shape))


def test_inconsistent_batches_and_bad_values_are_rejected():
    acc = StreamingMetrics().update(np.zeros((1, 3, 64, 64)), np.zeros((1, 3, 64, 64)))
    with pytest.raises(ValueError, match="earlier batches"):
        acc.update(np.zeros((1, 2, 64, 64)), np.zeros((1, 2, 64, 64)))
    with pytest.raises(ValueError, match="NaN"):
        acc.update(np.full((1, 3, 64, 64), np.nan), np.zeros((1, 3, 64, 64)))
    with pytest.raises(ValueError, match="255"):
        acc.update(np.zeros((1, 3, 64, 64)), np.full((1, 3, 64, 64), 255.0))
    assert acc.num_sequences == 1
    with pytest.raises(ValueError, match="no sequences"):
        StreamingMetrics().result()


def test_result_is_json_serialisable_and_table_is_readable():
    pred, target = _random_pair(b=2, t=3, seed=6)
    r = compute_metrics(pred, target)
    assert json.loads(json.dumps(r)) == r
    assert all(type(v) is float for k, v in r.items() if k not in ("num_sequences", "per_frame"))
    table = format_table(r, first_frame=11)
    lines = table.splitlines()
    assert "2 sequences" in lines[0] and "11..13" in lines[0]
    for frame, mse in zip(("11", "12", "13"), r["per_frame"]["mse"]):
        row = next(line for line in lines if line.split() and line.split()[0] == frame)
        assert float(row.split()[1]) == pytest.approx(mse, abs=1e-3)
    mean_row = next(line for line in lines if line.split() and line.split()[0] == "mean")
    assert float(mean_row.split()[3]) == pytest.approx(r["ssim"], abs=1e-4)
    assert float(mean_row.split()[4]) == pytest.approx(r["ssim_openstl"], abs=1e-4)
    assert "SSIM-OSTL" in lines[1] and "OpenSTL" in lines[-1]


# ---------------------------------------------------------------- OpenSTL's SSIM

def _hand_made_pair(h=16, w=16):
    """A dim gradient background with a bright square; the prediction has the square moved
    by one pixel and a fainter background. (1, 1, 1, H, W) float32 each."""
    yy, xx = np.mgrid[0:h, 0:w]
    target = 0.2 * xx / (w - 1)
    target[4:9, 5:10] = 0.9
    pred = 0.15 * xx / (w - 1)
    pred[5:10, 5:10] = 0.8
    return pred[None, None, None].astype(np.float32), target[None, None, None].astype(np.float32)


def test_ssim_openstl_is_skimage_with_data_range_two():
    pred, target = _hand_made_pair()
    got = frame_metrics(pred, target)
    p, t = pred[0, 0, 0], target[0, 0, 0]
    # OpenSTL's call: (C, H, W) -> (W, H, C), channel axis last, float32, range 2 (implicit in 0.19)
    exact = structural_similarity(p[None].swapaxes(0, 2), t[None].swapaxes(0, 2), channel_axis=-1, data_range=2.0)
    assert got["ssim_openstl"][0, 0] == exact
    # the same as a plain float64 call with data_range 2, up to float32 rounding
    assert got["ssim_openstl"][0, 0] == pytest.approx(
        structural_similarity(p.astype(np.float64), t.astype(np.float64), data_range=2.0), abs=1e-6)
    # and clearly not our SSIM
    ours = structural_similarity(p.astype(np.float64), t.astype(np.float64), data_range=1.0)
    assert got["ssim"][0, 0] == pytest.approx(ours, abs=1e-12)
    assert got["ssim_openstl"][0, 0] > ours + 0.01


def test_ssim_openstl_of_several_channels_is_the_channel_mean():
    rng = np.random.default_rng(7)
    target = rng.random((1, 1, 3, 12, 20)).astype(np.float32)
    pred = np.clip(target + rng.normal(0, 0.1, target.shape), 0, 1).astype(np.float32)
    got = frame_metrics(pred, target)["ssim_openstl"][0, 0]
    per_channel = [structural_similarity(pred[0, 0, c], target[0, 0, c], data_range=2.0) for c in range(3)]
    assert got == pytest.approx(np.mean(per_channel), abs=1e-6)


@pytest.mark.parametrize("seed", range(4))
def test_ssim_openstl_is_never_below_ssim_on_non_negative_frames(seed):
    # Follows from the SSIM formula for pixels >= 0 (see ssim_openstl_frame); float32 rounding aside.
    rng = np.random.default_rng(seed)
    target = (rng.random((3, 4, 1, 16, 16)) < 0.15) * rng.random((3, 4, 1, 16, 16))  # sparse, like digits
    pred = [np.roll(target, 1, axis=-1) * 0.7, 1.0 - target, rng.random(target.shape) ** 4][seed % 3]
    got = frame_metrics(pred, target)
    assert (got["ssim_openstl"] >= got["ssim"] - 1e-6).all()


# ---------------------------------------------------------------- channels and frame sizes

def test_several_channels_sum_pixels_and_average_ssim_over_channels():
    target = np.full((2, 3, 3, 16, 24), 0.5)  # (B, T, C, H, W), non-square
    offsets = np.array([0.1, 0.2, 0.0])
    pred = target + offsets[None, None, :, None, None]
    pixels = 16 * 24
    r = compute_metrics(pred, target)
    assert r["mse"] == pytest.approx(pixels * np.square(offsets).sum(), rel=1e-9)
    assert r["mae"] == pytest.approx(pixels * offsets.sum(), rel=1e-9)
    assert r["psnr"] == pytest.approx(-10 * math.log10(np.square(offsets).mean()), rel=1e-9)
    rng = np.random.default_rng(3)
    target = rng.random((1, 2, 2, 16, 24))
    pred = np.clip(target + rng.normal(0, 0.2, target.shape), 0, 1)
    got = frame_metrics(pred, target)["ssim"]
    for j in range(2):
        want = np.mean([structural_similarity(pred[0, j, c], target[0, j, c], data_range=1.0) for c in range(2)])
        assert got[0, j] == pytest.approx(want, abs=1e-12)


def test_non_square_one_channel_frames_match_direct_skimage_calls():
    rng = np.random.default_rng(4)
    target = rng.random((2, 2, 1, 9, 33))
    pred = np.clip(target + rng.normal(0, 0.1, target.shape), 0, 1)
    got = frame_metrics(pred, target)
    assert got["mse"] == pytest.approx(np.square(pred - target).sum(axis=(2, 3, 4)), rel=1e-12)
    assert got["ssim"][1, 0] == pytest.approx(structural_similarity(pred[1, 0, 0], target[1, 0, 0], data_range=1.0),
                                              abs=1e-12)


def test_batches_with_another_channel_count_are_rejected():
    acc = StreamingMetrics().update(np.zeros((1, 2, 2, 16, 16)), np.zeros((1, 2, 2, 16, 16)))
    assert acc.frame_shape == (2, 2, 16, 16)
    with pytest.raises(ValueError, match="earlier batches"):
        acc.update(np.zeros((1, 2, 16, 16)), np.zeros((1, 2, 16, 16)))


# ---------------------------------------------------------------- skill scores

def _skill_fixture():
    """Two sequences, two lead frames, 2x2 frames (8 values per lead frame), in e.g. mm/h."""
    pred = np.array([
        [[[0, 2], [3, 1]], [[2, 2], [2, 2]]],  # sequence 0: lead frame 1, lead frame 2
        [[[5, 5], [0, 0]], [[0, 0], [0, 0]]],  # sequence 1
    ], dtype=np.float64)  # (B=2, T=2, H=2, W=2)
    true = np.array([
        [[[2, 2], [0, 1]], [[2, 2], [2, 0]]],
        [[[5, 1.999], [0, 2.5]], [[0, 0], [0, 3]]],
    ], dtype=np.float64)
    return pred, true


def _entry(result, threshold):
    return next(e for e in result["by_threshold"] if e["threshold"] == threshold)


def test_skill_scores_match_hand_counted_tables():
    pred, true = _skill_fixture()
    result = SkillScores([5, 0, 2]).update(pred, true).result()
    assert result["thresholds"] == [0.0, 2.0, 5.0] and result["lead_frames"] == 2 and result["num_sequences"] == 2
    # threshold 2 (a value equal to 2 is an event):
    #   lead 1, seq 0: (0 vs 2) M, (2 vs 2) H, (3 vs 0) F, (1 vs 1) N
    #           seq 1: (5 vs 5) H, (5 vs 1.999) F, (0 vs 0) N, (0 vs 2.5) M   -> H2 M2 F2 N2
    #   lead 2, seq 0: H, H, H, (2 vs 0) F;  seq 1: N, N, N, (0 vs 3) M       -> H3 M1 F1 N3
    e = _entry(result, 2.0)
    lead = e["per_lead_frame"]
    assert (lead["hits"], lead["misses"], lead["false_alarms"], lead["correct_negatives"]) == ([2, 3], [2, 1],
                                                                                                [2, 1], [2, 3])
    # lead 1: POD 2/4, FAR 2/4, CSI 2/6, HSS 2(4-4)/(4*4+4*4) = 0
    # lead 2: POD 3/4, FAR 1/4, CSI 3/5, HSS 2(9-1)/(4*4+4*4) = 1/2
    assert lead["pod"] == pytest.approx([0.5, 0.75]) and lead["far"] == pytest.approx([0.5, 0.25])
    assert lead["csi"] == pytest.approx([1 / 3, 0.6]) and lead["hss"] == pytest.approx([0.0, 0.5])
    assert e["mean_over_lead_frames"] == pytest.approx({"pod": 0.625, "far": 0.375, "csi": (1 / 3 + 0.6) / 2,
                                                        "hss": 0.25})
    # pooled H5 M3 F3 N5: POD 5/8, FAR 3/8, CSI 5/11, HSS 2(25-9)/(8*8+8*8) = 1/4
    assert e["pooled"] == pytest.approx({"hits": 5, "misses": 3, "false_alarms": 3, "correct_negatives": 5,
                                         "pod": 5 / 8, "far": 3 / 8, "csi": 5 / 11, "hss": 0.25})
    assert e["notes"] == []
    # threshold 5: lead 1 only seq 1 has values >= 5: (5 vs 5) H, (5 vs 1.999) F, the other 6 N
    #   POD 1/1, FAR 1/2, CSI 1/2, HSS 2(1*6 - 0)/((1)(6) + (2)(7)) = 12/20; lead 2: no event anywhere
    e = _entry(result, 5.0)
    lead = e["per_lead_frame"]
    assert lead["hits"] == [1, 0] and lead["false_alarms"] == [1, 0] and lead["correct_negatives"] == [6, 8]
    assert lead["pod"] == [1.0, None] and lead["far"] == [0.5, None] and lead["csi"] == [0.5, None]
    assert lead["hss"] == [pytest.approx(0.6), None]
    assert e["mean_over_lead_frames"] == pytest.approx({"pod": 1.0, "far": 0.5, "csi": 0.5, "hss": 0.6})
    # pooled H1 M0 F1 N14: HSS 2(14 - 0)/((1)(14) + (2)(15)) = 28/44
    assert e["pooled"]["hss"] == pytest.approx(28 / 44)
    assert len(e["notes"]) == 4 and all("lead frame(s) 2 " in n for n in e["notes"])
    # threshold 0: every value is an event in both: perfect POD/FAR/CSI, HSS undefined
    e = _entry(result, 0.0)
    assert e["per_lead_frame"]["hits"] == [8, 8] and e["pooled"]["correct_negatives"] == 0
    assert (e["pooled"]["pod"], e["pooled"]["far"], e["pooled"]["csi"], e["pooled"]["hss"]) == (1.0, 0.0, 1.0, None)
    assert any("HSS" in n and "all events" in n for n in e["notes"])


def test_skill_scores_without_any_event_are_null_with_notes():
    zeros = np.zeros((3, 4, 1, 5, 5))
    result = SkillScores([1.0]).update(zeros, zeros).result()
    e = result["by_threshold"][0]
    assert e["pooled"] == {"hits": 0, "misses": 0, "false_alarms": 0, "correct_negatives": 300,
                           "pod": None, "far": None, "csi": None, "hss": None}
    assert e["mean_over_lead_frames"] == {"pod": None, "far": None, "csi": None, "hss": None}
    assert e["per_lead_frame"]["pod"] == [None] * 4
    assert len(e["notes"]) == 8 and any("no observed event" in n for n in e["notes"])
    text = json.dumps(result, allow_nan=False)  # no NaN anywhere
    assert json.loads(text) == result


def test_threshold_equality_counts_as_an_event():
    thr = 0.5
    below = np.nextafter(thr, 0.0)
    pred = np.array([thr, below, thr, below]).reshape(1, 1, 1, 2, 2)
    true = np.array([thr, thr, below, below]).reshape(1, 1, 1, 2, 2)
    pooled = SkillScores([thr]).update(pred, true).result()["by_threshold"][0]["pooled"]
    assert (pooled["hits"], pooled["misses"], pooled["false_alarms"], pooled["correct_negatives"]) == (1, 1, 1, 1)


def test_skill_scores_stream_over_batches_and_count_every_channel():
    rng = np.random.default_rng(5)
    pred = rng.gamma(1.0, 3.0, (5, 3, 2, 6, 7))  # (B, T, C, H, W), rain-rate-like
    true = rng.gamma(1.0, 3.0, (5, 3, 2, 6, 7))
    whole = SkillScores([0.5, 2, 10]).update(pred, true).result()
    acc = SkillScores([0.5, 2, 10])
    for lo, hi in ((0, 2), (2, 2), (2, 5)):
        acc.update(pred[lo:hi], true[lo:hi])
    assert acc.result() == whole
    e = _entry(whole, 2.0)
    per_lead = [e["per_lead_frame"][k] for k in ("hits", "misses", "false_alarms", "correct_negatives")]
    assert [sum(v[i] for v in per_lead) for i in range(3)] == [5 * 2 * 6 * 7] * 3  # all channels and pixels
    assert e["per_lead_frame"]["hits"][1] == int(((pred[:, 1] >= 2) & (true[:, 1] >= 2)).sum())


def test_contingency_scores_are_exact_for_counts_beyond_int64_products():
    h, m, f, n = 3 * 10 ** 10, 10 ** 10 + 7, 2 * 10 ** 10 + 1, 9 * 10 ** 11  # H*N ~ 2.7e22 > 2^63
    got = contingency_scores(np.int64(h), np.int64(m), np.int64(f), np.int64(n))
    want = Fraction(2 * (h * n - m * f), (h + m) * (m + n) + (h + f) * (f + n))
    assert got["hss"] == float(want)
    assert got["pod"] == h / (h + m) and got["csi"] == h / (h + m + f) and got["far"] == f / (h + f)
    with pytest.raises(ValueError, match=">= 0"):
        contingency_scores(1, -1, 0, 0)


@pytest.mark.parametrize("thresholds,match", [
    ([], "at least one"), ([1, 1.0], "differ"), ([float("nan")], "finite"), (["a"], "numbers")])
def test_bad_thresholds_are_rejected(thresholds, match):
    with pytest.raises(ValueError, match=match):
        SkillScores(thresholds)


def test_bad_skill_score_inputs_are_rejected():
    acc = SkillScores([1.0]).update(np.zeros((1, 2, 4, 4)), np.zeros((1, 2, 4, 4)))
    with pytest.raises(DataError, match="NaN"):
        acc.update(np.full((1, 2, 4, 4), np.nan), np.zeros((1, 2, 4, 4)))
    with pytest.raises(DataError, match="shapes differ"):
        acc.update(np.zeros((1, 2, 4, 4)), np.zeros((1, 2, 4, 5)))
    with pytest.raises(DataError, match="earlier batches"):
        acc.update(np.zeros((1, 3, 4, 4)), np.zeros((1, 3, 4, 4)))
    with pytest.raises(DataError, match=r"\(B, T, C, H, W\)"):
        acc.update(np.zeros((4, 4)), np.zeros((4, 4)))
    assert acc.num_sequences == 1
    with pytest.raises(ValueError, match="no sequences"):
        SkillScores([1.0]).result()


def test_skill_table_lists_thresholds_scores_and_notes():
    pred, true = _skill_fixture()
    result = SkillScores([2, 5]).update(pred, true).result()
    lines = format_skill_table(result).splitlines()
    assert lines[1].split() == ["threshold", "POD", "FAR", "CSI", "HSS"]
    row = next(line.split() for line in lines if line.split() and line.split()[0] == "2")
    assert [float(v) for v in row[1:]] == pytest.approx([0.625, 0.375, (1 / 3 + 0.6) / 2, 0.25], abs=1e-4)
    assert "mean over lead frames" in lines[0] and "value >= threshold" in "\n".join(lines)
    assert sum(line.startswith("note: ") for line in lines) == 4
    pooled = format_skill_table(SkillScores([0]).update(pred, true).result(), which="pooled").splitlines()
    assert pooled[3].split() == ["0", "1.0000", "0.0000", "1.0000", "-"] and "summed over all lead" in pooled[0]
    with pytest.raises(ValueError, match="which"):
        format_skill_table(result, which="best")


# ---------------------------------------------------------------- balanced errors (HKO-7)

def test_hko7_thresholds_are_the_rain_rates_in_dbz():
    from src.metrics import HKO7_DBZ_THRESHOLDS, HKO7_RAIN_RATES

    for rate, dbz in zip(HKO7_RAIN_RATES, HKO7_DBZ_THRESHOLDS):  # Z = 58.53 R^1.56 inverted
        assert abs((10 ** (dbz / 10) / 58.53) ** (1 / 1.56) - rate) < 1e-3 * rate
    assert [round(v, 2) for v in HKO7_DBZ_THRESHOLDS] == [12.98, 22.37, 28.58, 33.27, 40.72]


def test_balanced_errors_against_numpy_including_values_on_a_threshold():
    from src.metrics import BalancedErrors

    thresholds, weights = (20.0, 35.0), (1.0, 2.0, 5.0)
    rng = np.random.default_rng(3)
    target_units = rng.choice([0.0, 19.9, 20.0, 30.0, 35.0, 50.0], size=(3, 4, 1, 5, 6))  # 20 and 35 exactly
    target = (target_units + 10.0) / 70.0  # (B, T, C, H, W) in [0, 1]
    pred = np.clip(target + rng.normal(0, 0.1, target.shape), -0.2, 1.2)  # clipped by BalancedErrors
    errors = BalancedErrors(thresholds, weights)
    errors.update(pred[:2], target[:2], target_units[:2]).update(pred[2:], target[2:], target_units[2:])
    got = errors.result()
    w = np.where(target_units >= 35.0, 5.0, np.where(target_units >= 20.0, 2.0, 1.0))  # on a threshold: higher class
    err = np.clip(pred, 0, 1) - target
    want_mse = (w * err ** 2).sum(axis=(2, 3, 4))  # (B, T) per-frame sums
    want_mae = (w * np.abs(err)).sum(axis=(2, 3, 4))
    assert got["b_mse"] == pytest.approx(want_mse.mean(), rel=1e-12)
    assert got["b_mae"] == pytest.approx(want_mae.mean(), rel=1e-12)
    assert got["per_frame"]["b_mse"] == pytest.approx(list(want_mse.mean(axis=0)), rel=1e-12)
    assert (got["thresholds"], got["weights"]) == ([20.0, 35.0], [1.0, 2.0, 5.0])


@pytest.mark.parametrize("thresholds, weights, fragment", [
    ((35.0, 20.0), (1, 2, 3), "increasing"), ((20.0,), (1, 2, 3), "one weight more"), ((20.0,), (1, 0), "positive")])
def test_balanced_errors_refuse_bad_classes(thresholds, weights, fragment):
    from src.metrics import BalancedErrors

    with pytest.raises(ValueError, match=fragment):
        BalancedErrors(thresholds, weights)
