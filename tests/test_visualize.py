"""Tests of the Pillow pictures: valid files, expected geometry, the right pixels."""
import os

import numpy as np
import pytest
from PIL import Image

from src import visualize
from src.visualize import (GAP, LABEL_WIDTH, save_comparison_gif, save_frames_png,
                           save_metric_plot, save_sequence_strip)

H = W = 16


def _sequence(t, seed, h=H, w=W):
    return np.random.default_rng(seed).random((t, 1, h, w)).astype(np.float32)


def _per_frame(n=10, offset=0.0):
    k = np.arange(n, dtype=np.float64)
    return {"mse": list(20 + 3 * k + offset), "mae": list(60 + 5 * k), "ssim": list(0.95 - 0.01 * k),
            "psnr": list(25 - 0.5 * k)}


def test_strip_geometry_and_prediction_pixels(tmp_path):
    inputs, target, pred = _sequence(10, 0), _sequence(10, 1), _sequence(10, 2)
    path = save_sequence_strip(str(tmp_path / "a" / "b" / "strip.png"), inputs, target, pred)
    assert path == str(tmp_path / "a" / "b" / "strip.png")
    assert os.listdir(tmp_path / "a" / "b") == ["strip.png"]  # no temporary file left behind
    with Image.open(path) as im:
        assert im.format == "PNG"
        assert im.size == (LABEL_WIDTH + GAP + 10 * (W + GAP), GAP + 4 * (H + GAP))
        px = np.asarray(im.convert("RGB"))
    expected = np.rint(pred[:, 0] * 255).astype(np.uint8)  # (T, H, W)
    y0 = GAP + 2 * (H + GAP)  # third row = prediction
    for t in (0, 4, 9):
        x0 = LABEL_WIDTH + GAP + t * (W + GAP)
        cell = px[y0:y0 + H, x0:x0 + W]  # (H, W, 3)
        np.testing.assert_array_equal(cell[..., 0], expected[t])
        np.testing.assert_array_equal(cell[..., 1], expected[t])
    # truth row shows the target, separator lines are white
    truth = px[GAP + H + GAP:GAP + H + GAP + H, LABEL_WIDTH + GAP:LABEL_WIDTH + GAP + W, 0]
    np.testing.assert_array_equal(truth, np.rint(target[0, 0] * 255).astype(np.uint8))
    assert (px[GAP + H, LABEL_WIDTH + GAP:] == 255).all()


def test_strip_scale_uneven_rows_and_error_row(tmp_path):
    inputs, target = _sequence(4, 0, 8, 8), _sequence(6, 1, 8, 8)[:, 0]  # (T, H, W) form too
    path = save_sequence_strip(tmp_path / "s.png", inputs, target, target, scale=2)
    with Image.open(path) as im:
        assert im.size == (LABEL_WIDTH + GAP + 6 * (16 + GAP), GAP + 4 * (16 + GAP))
        px = np.asarray(im.convert("RGB"))
    err_row = px[GAP + 3 * (16 + GAP):GAP + 3 * (16 + GAP) + 16, LABEL_WIDTH + GAP:LABEL_WIDTH + GAP + 16]
    assert (err_row == 0).all()  # perfect prediction -> black error cells


def test_strip_rejects_bad_shapes(tmp_path):
    good = _sequence(10, 0)
    with pytest.raises(ValueError, match="one sequence"):
        save_sequence_strip(tmp_path / "x.png", good[None], good, good)
    with pytest.raises(ValueError, match="does not match"):
        save_sequence_strip(tmp_path / "x.png", good, good, good[:5])
    with pytest.raises(ValueError, match="16x16"):
        save_sequence_strip(tmp_path / "x.png", _sequence(10, 0, 8, 8), good, good)
    with pytest.raises(ValueError, match="one channel"):
        save_sequence_strip(tmp_path / "x.png", np.zeros((10, 3, H, W)), good, good)
    assert not os.listdir(tmp_path)


@pytest.mark.parametrize("with_inputs,frames", [(True, 16), (False, 6)])
def test_comparison_gif_frame_count(tmp_path, with_inputs, frames):
    target, pred = _sequence(6, 1), _sequence(6, 2)
    inputs = _sequence(10, 0) if with_inputs else None
    path = save_comparison_gif(tmp_path / "g.gif", target, pred, inputs=inputs, scale=2)
    with Image.open(path) as im:
        assert im.format == "GIF" and im.n_frames == frames and im.is_animated
        assert im.size[0] > 2 * 2 * W and im.size[1] > 2 * H
        im.seek(frames - 1)
        last = np.asarray(im.convert("RGB"))
    # the prediction panel (right) of the last frame shows the last predicted frame
    assert last[..., 0].std() > 10


def test_comparison_gif_marks_observed_and_predicted(tmp_path):
    path = save_comparison_gif(tmp_path / "g.gif", _sequence(2, 1), _sequence(2, 2),
                               inputs=_sequence(2, 0), scale=1)
    colours = []
    with Image.open(path) as im:
        for i in range(4):
            im.seek(i)
            rgb = np.asarray(im.convert("RGB")).astype(int)
            border = rgb[visualize._GIF_TITLE_H + 1, visualize._GIF_PAD + 1]  # border pixel
            colours.append("green" if border[1] > border[0] else "red")
    assert colours == ["green", "green", "red", "red"]


def test_frames_png(tmp_path):
    seq = _sequence(20, 3)
    path = save_frames_png(tmp_path / "f.png", seq)
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size == (GAP + 20 * (W + GAP), H + 2 * GAP)
        px = np.asarray(im.convert("L"))
    x0 = GAP + 19 * (W + GAP)
    np.testing.assert_array_equal(px[GAP:GAP + H, x0:x0 + W], np.rint(seq[19, 0] * 255).astype(np.uint8))
    with pytest.raises(ValueError, match=r"\(T, 1, H, W\)"):
        save_frames_png(tmp_path / "f.png", np.zeros((H, W)))


def test_metric_plot(tmp_path):
    path = save_metric_plot(tmp_path / "p" / "plot.png", _per_frame(), first_frame=11)
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size == (720, 460)
        px = np.asarray(im.convert("RGB")).astype(int)
    blue = (np.abs(px - np.array(visualize.SERIES_COLOURS[0])).sum(axis=-1) < 30)
    for qy in (0, 1):  # every one of the 4 charts has its curve drawn
        for qx in (0, 1):
            chart = blue[qy * 230:(qy + 1) * 230, qx * 360:(qx + 1) * 360]
            assert chart.sum() > 50
            # a line segment (not just the point markers) between frames 11 and 12:
            # plot area x 56..346, 10 points -> the midpoint column is x = 56 + 16
            assert chart[:, 56 + 16].any()
    dark = (px.sum(axis=-1) < 200)
    assert dark[:, :56].sum() > 100  # y tick labels left of the first plot area


def test_metric_plot_compare_and_result_input(tmp_path):
    result = {"num_sequences": 3, "mse": 1.0, "per_frame": _per_frame(5)}
    path = save_metric_plot(tmp_path / "c.png", result, compare={"copy_last": _per_frame(5, 40)})
    with Image.open(path) as im:
        assert im.size == (720, 480)
        px = np.asarray(im.convert("RGB")).astype(int)
    orange = (np.abs(px - np.array(visualize.SERIES_COLOURS[1])).sum(axis=-1) < 30)
    assert orange.sum() > 100
    flat = {k: [1.0] * 3 for k in ("mse", "mae", "ssim", "psnr")}  # constant curves still draw
    save_metric_plot(tmp_path / "flat.png", flat)


@pytest.mark.parametrize("bad,match", [
    ({"mse": [1.0]}, "missing"),
    ({"mse": [1.0, 2.0], "mae": [1.0], "ssim": [1.0], "psnr": [1.0]}, "same non-empty"),
    ({"mse": [float("nan")], "mae": [1.0], "ssim": [1.0], "psnr": [1.0]}, "NaN"),
])
def test_metric_plot_rejects_bad_curves(tmp_path, bad, match):
    with pytest.raises(ValueError, match=match):
        save_metric_plot(tmp_path / "bad.png", bad)


def test_nice_ticks_cover_the_range():
    ticks, step = visualize.nice_ticks(0.83, 0.97)
    assert ticks[0] <= 0.83 and ticks[-1] >= 0.97 and 3 <= len(ticks) <= 7
    assert step in (0.02, 0.025, 0.05)
    assert visualize._tick_label(0.25, 0.25) == "0.25" and visualize._tick_label(-0.0, 5) == "0"


def test_strip_without_ground_truth_has_input_and_prediction_rows(tmp_path):
    """A user's own frames have no truth: two labelled rows, the second showing the prediction."""
    from PIL import Image
    from src.visualize import GAP, LABEL_WIDTH, save_sequence_strip
    inputs = np.zeros((3, 1, 16, 16), np.float32)
    pred = np.ones((2, 1, 16, 16), np.float32)
    path = save_sequence_strip(str(tmp_path / "s.png"), inputs, None, pred)
    img = np.asarray(Image.open(path).convert("L"))
    assert img.shape == (GAP + 2 * (16 + GAP), LABEL_WIDTH + GAP + 3 * (16 + GAP))
    row2 = img[GAP + 16 + GAP: GAP + 2 * 16 + GAP, LABEL_WIDTH + GAP: LABEL_WIDTH + GAP + 16]
    assert row2.min() == 255
