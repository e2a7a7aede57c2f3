"""What the tools report about a model of own sequences, checked through the scripts on tiny models of
32x48 rain-cell frames (dBZ, 4 observed + 4 predicted frames): the pictures (radar colours with a
colour bar for one dBZ channel, one row group per channel otherwise; the skill plot with every
baseline), ``python -m src.models.flops --ckpt_file`` (the checkpoint's network, no flags), and the
balanced errors, the FSS and the baselines of eval_onnx.py and postprocess.py against eval.py's on the same
windows; eval.py's FSS of the baselines against one computed here with scipy's uniform_filter.

Tolerances: the exported models (ONNX, MINDIR) compute the checkpoint's float32 network, so their
predictions agree to 1e-5 per pixel (export.py's parity tolerance) and the model's sums of errors
(MSE, MAE, B-MSE, B-MAE) to 1e-4 relative; the baselines are computed from the very same float32
inputs, so theirs agree to 1e-9 relative (only the order of the sums over sequences differs).
"""
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from src.data.rain_cells import RainCells

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
T_IN, T_OUT, HEIGHT, WIDTH = 4, 4, 32, 48
SCALE = 2  # the pictures' upscaling
TINY = ["--arch", "paper", "--hidden_channels", "4", "--kernel_size", "3", "--patch_size", "4", "--mode", "pynative",
        "--batch_size", "2", "--steps_per_epoch", "2", "--epochs", "1", "--val_sequences", "2", "--num_workers", "1",
        "--log_every", "1", "--device_target", "CPU", "--output_bias", "0"]
DBZ = ["--data_scale", "minmax", "--data_min", "-10", "--data_max", "60"]
MODEL_TOL, BASELINE_TOL = 1e-4, 1e-9
FSS_TOL = 2e-2  # the model's FSS of an exported file against eval.py's (assert_model_fss_agrees)


def run(*args):
    return subprocess.run([sys.executable, *map(str, args)], cwd=REPO, capture_output=True, text=True, timeout=600)


def ok(*args):
    proc = run(*args)
    assert proc.returncode == 0, f"{args[:2]} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def script(name):
    return os.path.join(REPO, name)


def one_error_line(proc):
    assert proc.returncode != 0, proc.stdout[-2000:]
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr[-3000:]
    return lines[0]


def read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def train(root, channels):
    """A tiny model of 8 sequences of 8 frames of (channels, 32, 48) dBZ: its checkpoint."""
    frames = RainCells(8, T_IN + T_OUT, WIDTH, channels=channels, seed=0).block(0, 8)[:, :, :, 8:8 + HEIGHT]
    data = root / "rain.npy"
    np.save(data, frames.astype(np.float32))  # (8, 8, C, 32, 48)
    ok(script("train.py"), "--dataset", "sequences", "--data_path", data, *DBZ, "--input_frames", T_IN,
       "--output_frames", T_OUT, "--val_fraction", "0.25", "--test_fraction", "0.25", *TINY,
       "--output_dir", root / "run")
    return root / "run" / "ckpt" / "last.ckpt"


@pytest.fixture(scope="module")
def two_channels(tmp_path_factory):
    return train(tmp_path_factory.mktemp("two_channels"), 2)


@pytest.fixture(scope="module")
def dbz(tmp_path_factory):
    """One dBZ channel: (root, checkpoint, eval.py's stdout and metrics.json with --thresholds [20,35])."""
    root = tmp_path_factory.mktemp("dbz")
    ckpt = train(root, 1)
    proc = ok(script("eval.py"), "--ckpt_file", ckpt, "--thresholds", "[20,35]", "--save_vis", "1",
              "--output_dir", root / "eval")
    return root, ckpt, proc.stdout, read_json(root / "eval" / "metrics.json")


# ---------------------------------------------------------------- flops of a checkpoint

@pytest.mark.slow
def test_flops_prints_the_network_the_checkpoint_stores_without_flags(two_channels):
    from src.checkpoint import read_checkpoint_config
    from src.models.flops import format_cost_table, network_cost

    stored = read_checkpoint_config(str(two_channels))
    proc = ok("-m", "src.models.flops", "--ckpt_file", two_channels)
    assert proc.stdout == f"config: stored in checkpoint {two_channels}\n{format_cost_table(stored)}\n"
    cost = network_cost(stored)
    assert f"frames of 2x{HEIGHT}x{WIDTH} (C x H x W)" in proc.stdout
    assert f"| **{cost['params']:,}** |" in proc.stdout and f"- parameters: {cost['params']:,} " in proc.stdout
    assert f"({cost['forward_macs']:,} MAC;" in proc.stdout
    assert f"= {cost['forward_flops'] / 1e9:.2f} GFLOP per sequence" in proc.stdout
    assert network_cost(stored.replace(channels=1))["params"] < cost["params"]  # the 2 channels were counted


@pytest.mark.slow
@pytest.mark.parametrize("flag,value,named", [
    ("--hidden_channels", "[8]", ("hidden_channels=[4]", "hidden_channels=[8]")),
    ("--channels", "1", (f"2x{HEIGHT}x{WIDTH}", f"1x{HEIGHT}x{WIDTH}")),
    ("--arch", "zoo", ("arch=paper", "arch=zoo")),
])
def test_flops_refuses_a_flag_that_contradicts_the_checkpoint(two_channels, flag, value, named):
    line = one_error_line(run("-m", "src.models.flops", "--ckpt_file", two_channels, flag, value))
    assert str(two_channels) in line and all(text in line for text in named), line


# ---------------------------------------------------------------- pictures

def strip_size(cols, rows, channels, bar=(0, 0)):
    from src.visualize import GAP, GROUP_HEADER, LABEL_WIDTH

    h, w = HEIGHT * SCALE, WIDTH * SCALE
    header = GROUP_HEADER if channels > 1 else 0
    width = LABEL_WIDTH + GAP + cols * (w + GAP) + bar[0]
    return width, max(GAP + channels * (header + rows * (h + GAP)), GAP + bar[1])


@pytest.mark.slow
def test_pictures_of_two_channel_data_show_each_channel_in_grey(two_channels, tmp_path):
    from src.visualize import GAP, GROUP_HEADER, LABEL_WIDTH

    ok(script("eval.py"), "--ckpt_file", two_channels, "--save_vis", "1", "--output_dir", tmp_path)
    with Image.open(tmp_path / "vis" / "seq_0000.png") as im:
        assert im.size == strip_size(T_IN, 4, 2)  # 2 row groups of input, truth, prediction, |error|
        px = np.asarray(im.convert("RGB")).astype(int)
    for k in range(2):  # the input row of each group is grey
        y0 = GAP + k * (GROUP_HEADER + 4 * (HEIGHT * SCALE + GAP)) + GROUP_HEADER
        cell = px[y0:y0 + HEIGHT * SCALE, LABEL_WIDTH + GAP:LABEL_WIDTH + GAP + WIDTH * SCALE]
        assert (cell[..., 0] == cell[..., 1]).all() and (cell[..., 1] == cell[..., 2]).all() and cell.std() > 1


@pytest.mark.slow
def test_pictures_of_dbz_data_are_in_radar_colours_with_the_thresholds_on_a_colour_bar(dbz):
    from src.checkpoint import read_checkpoint_config
    from src.data.pipeline import evaluation_windows
    from src.visualize import GAP, LABEL_WIDTH, MARK, colour_bar_box, colour_bar_size, colour_bar_y, radar_scale

    root, ckpt, _, _ = dbz
    source, _ = evaluation_windows(read_checkpoint_config(str(ckpt)))
    inputs = source[0][0]  # (T_in, 1, H, W): the first window eval.py drew
    scale = radar_scale(source.normalization.denormalize, (20, 35))
    with Image.open(root / "eval" / "vis" / "seq_0000.png") as im:
        assert im.size == strip_size(T_IN, 4, 1, colour_bar_size(scale))
        px = np.asarray(im.convert("RGB"))
    for t in range(T_IN):  # every pixel of the input row has the colour of its dBZ step
        x0 = LABEL_WIDTH + GAP + t * (WIDTH * SCALE + GAP)
        cell = px[GAP:GAP + HEIGHT * SCALE, x0:x0 + WIDTH * SCALE]
        want = np.repeat(np.repeat(scale.rgb(np.clip(inputs[t, 0].astype(np.float64), 0, 1)), SCALE, 0), SCALE, 1)
        np.testing.assert_array_equal(cell, want)
    assert len({tuple(c) for c in px[GAP:GAP + HEIGHT * SCALE, LABEL_WIDTH + GAP:].reshape(-1, 3)}) > 3
    left, top, right, _ = colour_bar_box(scale, strip_size(T_IN, 4, 1)[0], GAP)
    for threshold in (20, 35):
        assert tuple(px[colour_bar_y(scale, threshold, top), (left + right) // 2]) == MARK
    assert (root / "eval" / "vis" / "seq_0000.gif").is_file()


@pytest.mark.slow
def test_the_skill_plot_shows_the_model_and_every_baseline(dbz):
    from src.visualize import _CHART_H, _CHART_W, SERIES_COLOURS

    root, _, _, report = dbz
    assert set(report["baselines"]) == {"zeros", "copy_last", "extrapolation"}
    with Image.open(root / "eval" / "skill_per_frame.png") as im:
        assert im.size[1] > 2 * _CHART_H  # 2 thresholds and the legend
        assert im.size[0] == (2 + len(report["skill_scores"]["fss"]["scales"])) * _CHART_W  # CSI, HSS, FSS per scale
        px = np.asarray(im.convert("RGB")).astype(int)
    legend = px[2 * _CHART_H:]
    for colour in SERIES_COLOURS[:5]:  # model, predict-zeros, repeat-last-frame, extrapolation, FSS useful level
        assert (np.abs(legend - np.array(colour)).sum(axis=-1) == 0).sum() >= 14 * 5, colour
    useful = (np.abs(px[:2 * _CHART_H] - np.array(SERIES_COLOURS[4])).sum(axis=-1) == 0)  # the 0.5 + f0/2 line
    assert not useful[:, :2 * _CHART_W].any() and useful[:, 2 * _CHART_W:].sum() > 3 * 2 * 20  # FSS charts only


@pytest.mark.slow
def test_predict_draws_own_dbz_frames_without_truth_in_radar_colours(dbz, exported, tmp_path):
    from src.visualize import colour_bar_size, radar_scale

    frames = RainCells(2, T_IN, WIDTH, seed=5).block(0, 2)[:, :, :, 8:8 + HEIGHT]  # (2, T_in, 1, 32, 48) dBZ
    np.save(tmp_path / "frames.npy", frames)
    proc = ok(script("predict.py"), "--onnx_file", exported["ONNX"], "--input", tmp_path / "frames.npy",
              "--save_vis", "1", "--output_dir", tmp_path / "out")
    assert "picture: " in proc.stdout
    with Image.open(tmp_path / "out" / "vis" / "seq_0000.png") as im:  # input and prediction rows, colour bar
        assert im.size == strip_size(T_IN, 2, 1, colour_bar_size(radar_scale(None)))


# ---------------------------------------------------------------- fractions skill score

def scipy_fss(pred, target, threshold, scale):
    """FSS of lists of (H, W) fields, fractions from scipy's uniform_filter (zero padding): independent of
    src.metrics' integral images."""
    from scipy.ndimage import uniform_filter

    sums = np.zeros(3)  # (Pf-Po)^2, Pf^2, Po^2
    for p, t in zip(pred, target):
        pf = uniform_filter((p >= threshold).astype(np.float64), size=scale, mode="constant", cval=0.0)
        po = uniform_filter((t >= threshold).astype(np.float64), size=scale, mode="constant", cval=0.0)
        sums += [((pf - po) ** 2).sum(), (pf ** 2).sum(), (po ** 2).sum()]
    return None if sums[1] + sums[2] == 0 else 1.0 - sums[0] / (sums[1] + sums[2])


@pytest.mark.slow
def test_eval_reports_the_fss_of_the_model_and_every_baseline(dbz):
    from src.checkpoint import read_checkpoint_config
    from src.data.pipeline import evaluation_windows

    _, ckpt, stdout, report = dbz
    fss = report["skill_scores"]["fss"]
    assert fss["scales"] == [1, 5, 15] and fss["thresholds"] == [20.0, 35.0] and fss["lead_frames"] == T_OUT
    source, _ = evaluation_windows(read_checkpoint_config(str(ckpt)))
    windows = [source[i] for i in range(len(source))]  # (inputs (T_in, 1, H, W), targets (T_out, 1, H, W)) in [0, 1]
    dbz_of = source.normalization.denormalize
    for k, threshold in enumerate(fss["thresholds"]):
        entry = report["baselines"]["copy_last"]["skill_scores"]["fss"]["by_threshold"][k]
        observed = np.mean([dbz_of(t) >= threshold for _, t in windows])
        assert entry["observed_fraction"] == pytest.approx(observed, rel=1e-12)
        for scale in entry["by_scale"]:
            for lead in range(T_OUT):
                truth = [dbz_of(t[lead, 0]) for _, t in windows]
                persistence = [dbz_of(i[-1, 0]) for i, _ in windows]
                want = scipy_fss(persistence, truth, threshold, scale["scale"])
                assert scale["per_lead_frame"]["fss"][lead] == pytest.approx(want, rel=1e-9), (threshold, lead)
        zeros = report["baselines"]["zeros"]["skill_scores"]["fss"]["by_threshold"][k]  # no echo: no event
        assert [s["pooled"]["fss"] for s in zeros["by_scale"]] == ([0.0] * 3 if observed else [None] * 3)
    assert_prints_fss(stdout, report)


def assert_prints_fss(stdout, report):
    """The FSS table: the uniform FSS and the model's means at threshold 20 as in ``report``, an extrapolation row."""
    fss = report["skill_scores"]["fss"]
    table = stdout.split("fractions skill score (Roberts and Lean 2008)")[1]
    row = re.search(r"^ +20 +([0-9.]+) +model +([0-9.-]+) +([0-9.-]+) +([0-9.-]+) +(\S+)$", table, flags=re.M)
    model = fss["by_threshold"][0]
    assert float(row.group(1)) == pytest.approx(model["uniform_fss"], abs=5e-5)
    for cell, scale in zip(row.groups()[1:4], model["by_scale"]):
        value = scale["mean_over_lead_frames"]["fss"]
        assert cell == "-" if value is None else float(cell) == pytest.approx(value, abs=5e-5)
    assert row.group(5) == ("-" if model["smallest_useful_scale"] is None else str(model["smallest_useful_scale"]))
    assert re.search(r"^ +extrapolation +[0-9.-]+ +[0-9.-]+ +[0-9.-]+ +\S+$", table, flags=re.M)


# ---------------------------------------------------------------- eval_onnx.py and postprocess.py

@pytest.fixture(scope="module")
def exported(dbz):
    root, ckpt, _, _ = dbz
    files = {}
    for fmt in ("ONNX", "MINDIR"):
        ok(script("export.py"), "--ckpt_file", ckpt, "--file_name", root / "model", "--file_format", fmt)
        files[fmt] = root / f"model.{fmt.lower()}"
    return files


def assert_reports_agree(found, expected):
    """The model's metrics and balanced errors to MODEL_TOL, every baseline's to BASELINE_TOL."""
    for key in ("mse", "mae", "ssim"):
        assert found[key] == pytest.approx(expected[key], rel=MODEL_TOL), key
    balanced, want = found["skill_scores"]["balanced"], expected["skill_scores"]["balanced"]
    for key in ("b_mse", "b_mae"):
        assert balanced[key] == pytest.approx(want[key], rel=MODEL_TOL), key
        np.testing.assert_allclose(balanced["per_frame"][key], want["per_frame"][key], rtol=MODEL_TOL)
    assert balanced["weights"] == [1, 1, 2, 5, 10, 30] and len(balanced["per_frame"]["b_mse"]) == T_OUT
    assert set(found["baselines"]) == set(expected["baselines"]) == {"zeros", "copy_last", "extrapolation"}
    for name, base in expected["baselines"].items():
        got = found["baselines"][name]
        for key in ("mse", "mae", "ssim", "psnr"):
            assert got[key] == pytest.approx(base[key], rel=BASELINE_TOL), (name, key)
        for key in ("b_mse", "b_mae"):
            assert got["skill_scores"]["balanced"][key] == pytest.approx(
                base["skill_scores"]["balanced"][key], rel=BASELINE_TOL), (name, key)
        for got_t, want_t in zip(got["skill_scores"]["by_threshold"], base["skill_scores"]["by_threshold"]):
            assert got_t["pooled"] == want_t["pooled"], name  # the same counts and scores
        assert got["skill_scores"]["fss"] == base["skill_scores"]["fss"], name  # the same exact sums
    assert_model_fss_agrees(found["skill_scores"]["fss"], expected["skill_scores"]["fss"])


def assert_model_fss_agrees(found, expected):
    """The model's FSS: predictions within 1e-5 of each other (7e-4 dBZ) may still put a value on the other
    side of a threshold; one such value moves a mean FSS by about 1 / (4 lead frames x events per lead frame)."""
    assert (found["scales"], found["thresholds"]) == (expected["scales"], expected["thresholds"]) == ([1, 5, 15],
                                                                                                     [20.0, 35.0])
    for got_t, want_t in zip(found["by_threshold"], expected["by_threshold"]):
        assert got_t["observed_fraction"] == want_t["observed_fraction"]  # the same truth
        for got_s, want_s in zip(got_t["by_scale"], want_t["by_scale"]):
            got, want = got_s["mean_over_lead_frames"]["fss"], want_s["mean_over_lead_frames"]["fss"]
            assert (got is None) == (want is None) and (got is None or abs(got - want) <= FSS_TOL), (got, want)


def assert_prints_balanced_errors_and_extrapolation(stdout, report):
    balanced = report["skill_scores"]["balanced"]
    assert f"b_mse={balanced['b_mse']:.3f} b_mae={balanced['b_mae']:.3f}" in stdout
    assert re.search(r"B-MSE +B-MAE", stdout)
    row = re.search(r"^extrapolation +(.+)$", stdout.split("skill scores (mean over lead frames)")[1], flags=re.M)
    cells = row.group(1).split()
    extrapolation = report["baselines"]["extrapolation"]["skill_scores"]["balanced"]
    assert float(cells[-2]) == pytest.approx(extrapolation["b_mse"], abs=1e-4)
    assert float(cells[-1]) == pytest.approx(extrapolation["b_mae"], abs=1e-4)


@pytest.mark.slow
def test_eval_onnx_reports_balanced_errors_and_baselines_as_eval_does(dbz, exported, tmp_path):
    _, _, eval_stdout, host = dbz
    assert_prints_balanced_errors_and_extrapolation(eval_stdout, host)
    proc = ok(script("eval_onnx.py"), "--onnx_file", exported["ONNX"], "--thresholds", "[20,35]",
              "--output_dir", tmp_path)
    report = read_json(tmp_path / "metrics.json")
    assert report["engine"] == "onnxruntime" and report["num_sequences"] == host["num_sequences"] == 2
    assert_reports_agree(report, host)
    assert_prints_balanced_errors_and_extrapolation(proc.stdout, report)
    assert_prints_fss(proc.stdout, report)


@pytest.mark.slow
def test_postprocess_reports_balanced_errors_and_baselines_as_eval_does(dbz, exported, tmp_path):
    _, _, _, host = dbz
    ok(script("preprocess.py"), "--mindir_file", exported["MINDIR"], "--output_dir", tmp_path / "pre")
    manifest = read_json(tmp_path / "pre" / "preprocess.json")
    assert manifest["balance"]["weights"] == [1, 1, 2, 5, 10, 30]  # the model's classes: dBZ data
    ok(script("predict.py"), "--mindir_file", exported["MINDIR"], "--bin_dir", tmp_path / "pre" / "input",
       "--result_dir", tmp_path / "result")  # CPU stand-in for the 310 app
    proc = ok(script("postprocess.py"), "--result_path", tmp_path / "result", "--preprocess_path", tmp_path / "pre",
              "--output_dir", tmp_path / "post", "--thresholds", "[20,35]")
    report = read_json(tmp_path / "post" / "metrics_310.json")
    assert report["num_sequences"] == host["num_sequences"] == 2
    assert report["skill_scores"]["units"] == host["skill_scores"]["units"]
    assert_reports_agree(report, host)
    assert_prints_balanced_errors_and_extrapolation(proc.stdout, report)
    assert_prints_fss(proc.stdout, report)
    assert re.search(r"^extrapolation +[0-9.]+ +[0-9.]+", proc.stdout, flags=re.M)  # the model-vs-baselines table


# ---------------------------------------------------------------- eval.py --baseline pysteps

@pytest.mark.slow
def test_eval_scores_the_pysteps_baseline_on_the_windows_of_the_model(dbz, tmp_path):
    """eval.py --baseline pysteps scores the checkpoint's test windows: its MSE and pooled CSI are the ones
    computed here from the baseline on the same windows; a model's own report does not run pysteps."""
    pytest.importorskip("cv2")
    pytest.importorskip("pysteps")
    from src.baselines import predict_baseline
    from src.checkpoint import read_checkpoint_config
    from src.data.pipeline import evaluation_windows

    _, ckpt, _, host = dbz
    assert "pysteps" not in host["baselines"]
    proc = ok(script("eval.py"), "--ckpt_file", ckpt, "--baseline", "pysteps", "--thresholds", "[20,35]",
              "--output_dir", tmp_path)
    report = read_json(tmp_path / "metrics.json")
    source, _ = evaluation_windows(read_checkpoint_config(str(ckpt)))
    inputs, targets = source.batch(np.arange(len(source)))  # (N, T_in, 1, H, W), (N, T_out, 1, H, W)
    pred = predict_baseline("pysteps", inputs, T_OUT)
    assert report["num_sequences"] == len(source) == host["num_sequences"]
    assert report["mse"] == pytest.approx(((pred.astype(np.float64) - targets) ** 2).sum(axis=(2, 3, 4)).mean(),
                                          rel=1e-6)
    to_dbz = source.normalization.denormalize
    forecast, truth = to_dbz(np.clip(pred, 0, 1)) >= 20, to_dbz(targets) >= 20
    hits = np.count_nonzero(forecast & truth)
    pooled = report["skill_scores"]["by_threshold"][0]["pooled"]
    assert pooled["csi"] == pytest.approx(hits / np.count_nonzero(forecast | truth))
    assert "model=baseline:pysteps" in proc.stdout.splitlines()[-1]


@pytest.mark.slow
def test_eval_without_pysteps_is_one_error_line_and_writes_nothing(dbz, tmp_path):
    """A pysteps that cannot be imported (a stand-in package that raises ImportError, first on the path)."""
    fake = tmp_path / "site" / "pysteps"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError(\"No module named 'pysteps'\", name='pysteps')\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path / "site"), REPO]))
    proc = subprocess.run([sys.executable, script("eval.py"), "--ckpt_file", str(dbz[1]), "--baseline", "pysteps",
                           "--output_dir", str(tmp_path / "out")], cwd=REPO, capture_output=True, text=True,
                          timeout=600, env=env)
    line = one_error_line(proc)
    assert proc.returncode == 2 and "requirements-pysteps.txt" in line
    assert not (tmp_path / "out" / "metrics.json").exists()
