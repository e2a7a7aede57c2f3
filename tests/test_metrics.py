"""Tests of src/metrics.py against the definitions in BRIEF section 3."""
import json
import math

import numpy as np
import pytest
from skimage.metrics import structural_similarity

from src.metrics import (PSNR_CAP_DB, StreamingMetrics, compute_metrics, format_table,
                         frame_metrics)


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
    for k in ("mse", "mae", "ssim", "psnr"):
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
    for k in ("mse", "mae", "ssim", "psnr"):
        assert streamed[k] == pytest.approx(one_shot[k], rel=1e-12)
        assert streamed["per_frame"][k] == pytest.approx(one_shot["per_frame"][k], rel=1e-12)


def test_merge_and_state_dict_combine_parts():
    pred, target = _random_pair(b=5, t=2, seed=4)
    whole = compute_metrics(pred, target)
    a = StreamingMetrics().update(pred[:2], target[:2])
    b = StreamingMetrics().update(pred[2:], target[2:])
    restored = StreamingMetrics.from_state_dict(json.loads(json.dumps(b.state_dict())))
    merged = StreamingMetrics().merge(a).merge(restored).result()
    assert merged["num_sequences"] == 5
    for k in ("mse", "ssim"):
        assert merged[k] == pytest.approx(whole[k], rel=1e-12)
    with pytest.raises(ValueError, match="same frames"):
        a.merge(StreamingMetrics().update(pred[:, :1], target[:, :1]))


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
    ((2, 3, 2, 64, 64), (2, 3, 2, 64, 64), "one channel"),
    ((3, 64, 64), (3, 64, 64), r"\(B, T, 1, H, W\)"),
])
def test_bad_shapes_are_rejected(pred_shape, target_shape, match):
    with pytest.raises(ValueError, match=match):
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
