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
    with pytest.raises(ValueError, match="inputs frames have 3 channel"):
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


# ---------------------------------------------------------------- own data: channels and the radar colour scale

def _dbz(values):
    """dBZ -> pixels in [0, 1] of dBZ data normalised from [-10, 60]."""
    return (np.asarray(values, np.float64) + 10.0) / 70.0


def _to_dbz(frames):
    return np.asarray(frames, np.float64) * 70.0 - 10.0


def _step_frames(t, h=H, w=W):
    """(t, 1, h, w) frames whose column c holds the middle of radar step c - 1 (column 0: below the scale)."""
    middles = [-5.0] + [bound + 2.5 for bound, _ in visualize.RADAR_STEPS]  # 14 values
    row = np.array([middles[c % len(middles)] for c in range(w)])
    return np.broadcast_to(_dbz(row), (t, 1, h, w)).astype(np.float32), row


def test_radar_strip_colours_each_pixel_by_its_dbz_step_and_has_a_colour_bar(tmp_path):
    from src.visualize import BELOW_SCALE, MARK, RADAR_STEPS, colour_bar_box, colour_bar_size, colour_bar_y, radar_scale

    frames, row = _step_frames(3)
    scale = radar_scale(_to_dbz, thresholds=(20, 35))
    path = save_sequence_strip(tmp_path / "radar.png", frames, frames, frames, colours=scale)
    bar_w, bar_h = colour_bar_size(scale)
    frames_w = LABEL_WIDTH + GAP + 3 * (W + GAP)
    with Image.open(path) as im:
        assert im.size == (frames_w + bar_w, max(GAP + 4 * (H + GAP), GAP + bar_h))
        px = np.asarray(im.convert("RGB"))
    expected = [BELOW_SCALE] + [colour for _, colour in RADAR_STEPS]
    for r in range(3):  # input, truth and prediction rows are in radar colours
        y0 = GAP + r * (H + GAP)
        for c, value in enumerate(row):
            step = next((k for k in range(len(RADAR_STEPS) - 1, -1, -1) if value >= RADAR_STEPS[k][0]), -1)
            assert tuple(px[y0 + H // 2, LABEL_WIDTH + GAP + c]) == expected[step + 1], (r, value)
    left, top, right, bottom = colour_bar_box(scale, frames_w, GAP)
    x = (left + right) // 2
    for bound, colour in RADAR_STEPS:  # one cell per step, the highest at the top
        assert tuple(px[colour_bar_y(scale, bound + 2.5, top), x]) == colour, bound
    assert tuple(px[bottom - 2, x]) == BELOW_SCALE
    for t in (20, 35):  # the thresholds are marked across the bar, labelled at its left
        y = colour_bar_y(scale, t, top)
        assert tuple(px[y, x]) == MARK and tuple(px[y, left - 4]) == MARK
        assert (px[y - 6:y + 6, left - 30:left - 6].sum(axis=-1) < 300).any()
    assert (px[top:bottom, right + 4:right + 30].sum(axis=-1) < 300).sum() > 50  # the step labels


def test_radar_scale_puts_a_value_on_a_bound_into_the_step_above():
    from src.visualize import radar_scale

    scale = radar_scale(_to_dbz)
    assert [scale.step_of(v) for v in (-10, -0.01, 0, 4.99, 5, 59.9, 60, 75)] == [-1, -1, 0, 0, 1, 11, 12, 12]
    np.testing.assert_array_equal(scale.rgb(np.zeros((2, 3))), np.zeros((2, 3, 3), np.uint8))  # -10 dBZ: black


def test_a_two_channel_strip_has_one_labelled_row_group_per_channel(tmp_path):
    from src.visualize import GROUP_HEADER

    inputs, target, pred = (np.random.default_rng(s).random((4, 2, H, W)).astype(np.float32) for s in (0, 1, 2))
    one = save_sequence_strip(tmp_path / "one.png", inputs[:, :1], target[:, :1], pred[:, :1])
    two = save_sequence_strip(tmp_path / "two.png", inputs, target, pred)
    with Image.open(one) as a, Image.open(two) as b:
        assert a.size == (LABEL_WIDTH + GAP + 4 * (W + GAP), GAP + 4 * (H + GAP))
        assert b.size == (a.size[0], GAP + 2 * (GROUP_HEADER + 4 * (H + GAP)))
        px = np.asarray(b.convert("RGB"))
    group = GROUP_HEADER + 4 * (H + GAP)
    for k in range(2):
        y0 = GAP + k * group + GROUP_HEADER + 2 * (H + GAP)  # the prediction row of channel k
        cell = px[y0:y0 + H, LABEL_WIDTH + GAP:LABEL_WIDTH + GAP + W, 0]
        np.testing.assert_array_equal(cell, np.rint(pred[0, k] * 255).astype(np.uint8))
        header = px[GAP + k * group:GAP + k * group + GROUP_HEADER, :LABEL_WIDTH]
        assert (header.sum(axis=-1) < 300).sum() > 20  # "channel k" written in the band
    no_truth = save_sequence_strip(tmp_path / "no_truth.png", inputs, None, pred)
    with Image.open(no_truth) as im:
        assert im.size[1] == GAP + 2 * (GROUP_HEADER + 2 * (H + GAP))


def test_a_two_channel_gif_stacks_the_channels(tmp_path):
    target, pred = (np.random.default_rng(s).random((3, 2, H, W)).astype(np.float32) for s in (1, 2))
    one = save_comparison_gif(tmp_path / "one.gif", target[:, :1], pred[:, :1], scale=1)
    two = save_comparison_gif(tmp_path / "two.gif", target, pred, scale=1)
    with Image.open(one) as a, Image.open(two) as b:
        assert b.size == (a.size[0], a.size[1] + H + GAP) and b.n_frames == 3


@pytest.mark.parametrize("case,match", [
    ("radar_two_channels", "single-channel"),
    ("channels_differ", "inputs frames have 2 channel"),
    ("pred_not_target", "does not match"),
    ("not_a_scale", "ColourScale"),
    ("frame_rank", r"expected shape \(T, C, H, W\) or \(T, H, W\)"),
])
def test_bad_picture_input_is_one_clear_error_and_writes_nothing(tmp_path, case, match):
    from src.visualize import radar_scale

    one, two = _sequence(3, 0), np.zeros((3, 2, H, W), np.float32)
    args = {"radar_two_channels": (two, two, two, radar_scale(_to_dbz)),
            "channels_differ": (two, one, one, None),
            "pred_not_target": (one, one, two, None),
            "not_a_scale": (one, one, one, "radar"),
            "frame_rank": (one, one, np.zeros((H, W)), None)}[case]
    with pytest.raises(ValueError, match=match):
        save_sequence_strip(tmp_path / "x.png", *args[:3], colours=args[3])
    assert not os.listdir(tmp_path)


def test_only_single_channel_dbz_data_get_the_radar_colours():
    from src.config import load_config
    from src.evaluation import picture_colours

    dbz = dict(dataset="sequences", data_scale="minmax", data_min=-10, data_max=60, frame_height=32, frame_width=48,
               thresholds=[20, 35])
    scale = picture_colours(load_config([], channels=1, **dbz), _to_dbz)
    assert scale is not None and scale.units == "dBZ" and scale.thresholds == (20.0, 35.0)
    assert picture_colours(load_config([], channels=2, **dbz), _to_dbz) is None  # grey, one group per channel
    assert picture_colours(load_config([], dataset="synthetic"), _to_dbz) is None  # Moving MNIST stays grey
    other = dict(dbz, data_min=0, data_max=255)
    assert picture_colours(load_config([], channels=1, **other), _to_dbz) is None  # not dBZ: grey


def test_strip_and_gif_draw_the_truth_s_no_data_pixels_in_their_colour(tmp_path):
    """NaN in the truth (no data): exactly those pixels of the truth and |error| cells are NO_DATA; the others and
    the prediction row keep their grey values."""
    inputs, target, pred = _sequence(3, 0), _sequence(3, 1), _sequence(3, 2)
    missing = np.random.default_rng(3).random(target.shape) < 0.3  # (T, 1, H, W)
    path = save_sequence_strip(str(tmp_path / "strip.png"), inputs, np.where(missing, np.nan, target), pred)
    px = np.asarray(Image.open(path).convert("RGB"))
    is_no_data = (px == np.array(visualize.NO_DATA, np.uint8)).all(axis=-1)  # (height, width)
    for row, marked in ((0, False), (1, True), (2, False), (3, True)):  # input, truth, prediction, |error|
        y0 = GAP + row * (H + GAP)
        for t in range(3):
            x0 = LABEL_WIDTH + GAP + t * (W + GAP)
            expected = missing[t, 0] if marked else np.zeros((H, W), bool)
            np.testing.assert_array_equal(is_no_data[y0:y0 + H, x0:x0 + W], expected)
    truth = px[GAP + H + GAP:GAP + 2 * H + GAP, LABEL_WIDTH + GAP:LABEL_WIDTH + GAP + W, 0]
    kept = ~missing[0, 0]
    np.testing.assert_array_equal(truth[kept], np.rint(target[0, 0] * 255).astype(np.uint8)[kept])
    gif = save_comparison_gif(str(tmp_path / "a.gif"), np.where(missing, np.nan, target), pred)
    with Image.open(gif) as im:
        im.seek(0)
        assert (np.asarray(im.convert("RGB")) == np.array(visualize.NO_DATA, np.uint8)).all(axis=-1).sum() > 0
