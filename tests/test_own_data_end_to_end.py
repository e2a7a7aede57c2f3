"""Own sequence arrays end to end through the scripts: train.py, eval.py (skill scores), export.py,
predict.py, preprocess.py/postprocess.py, on a 3-channel 48x80 fixture with 6 observed and 12 predicted
frames; every bad input is one `error:` line, a non-zero exit and no file written."""
import json
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

from src.data.rain_cells import RainCells
from tests.data_files import write_test_file

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
T_IN, T_OUT = 6, 12
TINY = ["--arch", "paper", "--hidden_channels", "4", "--kernel_size", "3", "--patch_size", "4", "--mode", "pynative",
        "--batch_size", "2", "--steps_per_epoch", "2", "--epochs", "1", "--val_sequences", "2", "--num_workers", "1",
        "--log_every", "1", "--device_target", "CPU", "--output_bias", "0"]
DBZ = ["--data_scale", "minmax", "--data_min", "-10", "--data_max", "60"]


def run(script, *args, cwd=REPO):
    return subprocess.run([sys.executable, os.path.join(REPO, script), *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=600)


def ok(script, *args):
    proc = run(script, *args)
    assert proc.returncode == 0, f"{script} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def one_error_line(proc):
    """The single `error: ...` line a refused input gives."""
    assert proc.returncode != 0, proc.stdout[-2000:]
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    return lines[0]


def three_channel_frames(n, t, seed=0):
    """(N, T, 3, 48, 80) float32 'dBZ': rain cells, their smoothed previous frame, and the mean of both."""
    cells = RainCells(n, t, 80, channels=2, seed=seed).block(0, n)[:, :, :, 16:64]  # (N, T, 2, 48, 80)
    return np.concatenate([cells, cells.mean(axis=2, keepdims=True)], axis=2).astype(np.float32)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny model trained on the fixture: (root dir, data file, checkpoint)."""
    root = tmp_path_factory.mktemp("own")
    data = root / "rain3.npy"
    np.save(data, three_channel_frames(10, T_IN + T_OUT))
    ok("train.py", "--dataset", "sequences", "--data_path", data, *DBZ, "--input_frames", T_IN, "--output_frames",
       T_OUT, "--val_fraction", "0.2", "--test_fraction", "0.2", *TINY, "--output_dir", root / "run")
    return root, data, root / "run" / "ckpt" / "last.ckpt"


@pytest.mark.slow
def test_training_stores_the_data_contract_in_the_checkpoint(trained):
    from src.checkpoint import checkpoint_config, checkpoint_meta, read_checkpoint

    root, data, ckpt = trained
    stored = read_checkpoint(str(ckpt))
    cfg = checkpoint_config(stored, str(ckpt))
    assert (cfg.channels, cfg.frame_height, cfg.frame_width, cfg.data_dtype) == (3, 48, 80, "float32")
    assert (cfg.data_scale, cfg.data_min, cfg.data_max) == ("minmax", -10.0, 60.0)
    record = checkpoint_meta(stored)["data"]
    assert record["normalization"] == {"scale": "minmax", "data_min": -10.0, "data_max": 60.0, "dtype": "float32"}
    assert record["split"]["test"] and set(record["split"]["test"]).isdisjoint(record["split"]["train"])
    history = json.loads((root / "run" / "history.json").read_text())
    assert np.isfinite(history[0]["train_loss"]) and np.isfinite(history[0]["val_mse"])


def _csi_of_copy_last(raw, sequences, threshold):
    """CSI of repeating the last observed frame, counted straight from the raw dBZ file (per lead frame)."""
    x = np.clip(raw[sequences], -10, 60)  # (n, T, C, H, W)
    pred = np.repeat(x[:, T_IN - 1:T_IN], T_OUT, axis=1) >= threshold
    true = x[:, T_IN:T_IN + T_OUT] >= threshold
    hits = (pred & true).sum(axis=(0, 2, 3, 4))
    return hits / (pred | true).sum(axis=(0, 2, 3, 4))


def _balanced_errors_of_copy_last(raw, sequences):
    """HKO-7's B-MSE and B-MAE of repeating the last frame, from the raw dBZ file with NumPy."""
    from src.metrics import HKO7_DBZ_THRESHOLDS

    x = np.clip(raw[sequences], -10, 60).astype(np.float64)  # (n, T, C, H, W) dBZ
    truth = x[:, T_IN:T_IN + T_OUT]
    pred = np.repeat(x[:, T_IN - 1:T_IN], T_OUT, axis=1)
    weight = np.select([truth >= t for t in HKO7_DBZ_THRESHOLDS[::-1]], [30, 10, 5, 2, 1], default=1)
    err = (pred - truth) / 70.0  # in [0, 1] pixel units
    return (weight * err ** 2).sum(axis=(2, 3, 4)).mean(), (weight * np.abs(err)).sum(axis=(2, 3, 4)).mean()


@pytest.mark.slow
def test_eval_needs_no_repeated_flags_and_reports_skill_scores_in_dbz(trained):
    root, data, ckpt = trained
    proc = ok("eval.py", "--ckpt_file", ckpt, "--thresholds", "[20,35]", "--save_vis", "1")
    out = root / "run" / "eval"
    report = json.loads((out / "metrics.json").read_text())
    assert report["dataset"] == "sequences" and report["num_sequences"] == 2  # the 2 test sequences
    skill = report["skill_scores"]
    assert skill["thresholds"] == [20.0, 35.0] and "-10" in skill["units"] and "60" in skill["units"]
    assert [entry["threshold"] for entry in skill["by_threshold"]] == [20.0, 35.0]
    for entry in skill["by_threshold"]:
        assert len(entry["per_lead_frame"]["csi"]) == T_OUT and set(entry["mean_over_lead_frames"]) >= {"csi", "hss"}
    copy_last = report["baselines"]["copy_last"]["skill_scores"]
    assert "skill_scores" in report["baselines"]["zeros"]
    from src.checkpoint import checkpoint_meta, read_checkpoint

    test_sequences = checkpoint_meta(read_checkpoint(str(ckpt)))["data"]["split"]["test"]
    raw = np.load(data)
    for k, threshold in enumerate((20.0, 35.0)):
        with np.errstate(invalid="ignore"):
            expected = _csi_of_copy_last(raw, test_sequences, threshold)  # nan where no event at all
        got = [np.nan if v is None else v for v in copy_last["by_threshold"][k]["per_lead_frame"]["csi"]]
        assert np.isfinite(got).sum() >= T_OUT // 2
        np.testing.assert_allclose(got, expected, rtol=1e-3)
    assert "CSI>=20" in proc.stdout and "repeat-last-frame" in proc.stdout and "skill scores" in proc.stdout
    assert (out / "skill_per_frame.png").is_file() and (out / "vis" / "seq_0000.png").is_file()
    # own sequences: the extrapolation baseline too, and HKO-7's balanced errors for dBZ data
    assert set(report["baselines"]) == {"zeros", "copy_last", "extrapolation"}
    assert "B-MSE" in proc.stdout and "extrapolation" in proc.stdout and "b_mse=" in proc.stdout
    balanced = copy_last["balanced"]
    assert balanced["weights"] == [1, 1, 2, 5, 10, 30] and len(balanced["per_frame"]["b_mse"]) == T_OUT
    want_mse, want_mae = _balanced_errors_of_copy_last(raw, test_sequences)
    assert balanced["b_mse"] == pytest.approx(want_mse, rel=1e-4)
    assert balanced["b_mae"] == pytest.approx(want_mae, rel=1e-4)
    assert report["skill_scores"]["balanced"]["b_mse"] > 0


@pytest.mark.slow
def test_a_threshold_without_events_gives_null_and_a_note(trained, tmp_path):
    root, data, _ = trained
    ok("eval.py", "--baseline", "copy_last", "--dataset", "sequences", "--data_path", data, *DBZ, "--input_frames",
       T_IN, "--output_frames", T_OUT, "--val_fraction", "0.2", "--test_fraction", "0.2", "--thresholds", "[20,1000]",
       "--output_dir", tmp_path)
    skill = json.loads((tmp_path / "metrics.json").read_text())["skill_scores"]
    never = skill["by_threshold"][1]
    assert never["threshold"] == 1000.0
    assert never["mean_over_lead_frames"]["csi"] is None and never["pooled"]["csi"] is None
    assert any("CSI at threshold 1000 undefined" in note for note in never["notes"])
    assert skill["by_threshold"][0]["mean_over_lead_frames"]["csi"] > 0
    fss = skill["fss"]["by_threshold"][1]  # FSS: no event in forecast nor observation at any lead frame
    assert [s["mean_over_lead_frames"]["fss"] for s in fss["by_scale"]] == [None] * 3
    assert any("FSS at threshold 1000 undefined at every scale at every lead frame" in n for n in fss["notes"])
    assert fss["uniform_fss"] == 0.5 and fss["smallest_useful_scale"] is None


@pytest.mark.slow
def test_eval_refuses_data_of_another_shape_in_one_line_naming_both(trained, tmp_path):
    root, _, ckpt = trained
    other = tmp_path / "one_channel.npy"
    np.save(other, three_channel_frames(4, T_IN + T_OUT)[:, :, :1])  # (N, T, 1, 48, 80)
    out = tmp_path / "eval"
    line = one_error_line(run("eval.py", "--ckpt_file", ckpt, "--data_path", other, "--eval_split", "all",
                              "--output_dir", out))
    assert "1x48x80" in line and "3x48x80" in line and str(ckpt) in line
    assert not out.exists()


# ---------------------------------------------------------------- export, predict, Ascend 310 files

@pytest.fixture(scope="module")
def exported(trained):
    root, _, ckpt = trained
    ok("export.py", "--ckpt_file", ckpt, "--file_name", root / "model", "--file_format", "MINDIR")
    ok("export.py", "--ckpt_file", ckpt, "--file_name", root / "model", "--file_format", "ONNX")
    return root / "model.mindir", root / "model.onnx"


@pytest.mark.slow
def test_exported_models_have_the_data_shape_and_carry_the_normalisation(trained, exported):
    from src.checkpoint import read_data_record
    from src.export.model_info import read_mindir_info, read_onnx_info

    record = read_data_record(str(trained[2]))
    assert record["split"]["fingerprint"]["num_sequences"] == 10
    for info in (read_mindir_info(str(exported[0])), read_onnx_info(str(exported[1]))):
        assert info.input_shape == (1, T_IN, 3, 48, 80) and info.output_shape == (1, T_OUT, 3, 48, 80)
        assert (info.config.data_scale, info.config.data_min, info.config.data_max) == ("minmax", -10.0, 60.0)
        assert info.config.data_dtype == "float32" and info.config.data_layout == "NTCHW"
        assert info.data_record == record  # the split of record travels with the model


@pytest.mark.slow
def test_every_reader_refuses_a_grown_data_file_in_one_line_and_writes_nothing(trained, exported, tmp_path):
    """The data file grew after training (sequences appended): a split of it by split_seed would hold out
    other sequences, so eval.py, eval_onnx.py, predict.py --data_path and preprocess.py refuse it."""
    root, data, ckpt = trained
    grown = tmp_path / "grown.npy"
    np.save(grown, np.concatenate([np.load(data), three_channel_frames(5, T_IN + T_OUT, seed=3)]))
    out = tmp_path / "out"
    commands = {"eval.py": ["--ckpt_file", ckpt], "eval_onnx.py": ["--onnx_file", exported[1]],
                "predict.py": ["--mindir_file", exported[0]], "preprocess.py": ["--mindir_file", exported[0]]}
    for script, model in commands.items():
        line = one_error_line(run(script, *model, "--data_path", grown, "--output_dir", out))
        assert f"data file {grown} has 15 sequences;" in line and "was trained on 10 (5 appended after them" in line
        assert "split of record: test = sequences" in line and "--eval_split all" in line, script
        assert not out.exists(), script


@pytest.mark.slow
def test_preprocess_of_every_window_says_not_held_out_and_postprocess_repeats_it(trained, exported, tmp_path,
                                                                                 capsys):
    import postprocess
    import preprocess

    root, data, _ = trained
    grown = tmp_path / "grown.npy"
    np.save(grown, np.concatenate([np.load(data), three_channel_frames(5, T_IN + T_OUT, seed=3)]))
    pre = tmp_path / "pre"
    assert preprocess.main(["--mindir_file", str(exported[0]), "--data_path", str(grown), "--eval_split", "all",
                            "--output_dir", str(pre)]) == 0
    manifest = json.loads((pre / "preprocess.json").read_text())
    assert manifest["num_sequences"] == 15 and "not held-out: 6 of its 15 sequences were trained on" in \
        manifest["description"]
    results = tmp_path / "results"  # all-zero forecasts standing in for the device's
    results.mkdir()
    for name in manifest["names"]:
        np.zeros(manifest["output_shape"], np.float32).tofile(results / f"{name}_0.bin")
    capsys.readouterr()
    assert postprocess.main(["--result_path", str(results), "--preprocess_path", str(pre), "--output_dir",
                             str(tmp_path)]) == 0
    assert f"note: these scores are not held-out: {manifest['description']}" in capsys.readouterr().out
    assert json.loads((tmp_path / "metrics_310.json").read_text())["data"] == manifest["description"]


@pytest.mark.slow
def test_predict_reads_the_training_layouts_and_writes_the_users_units_and_layout(trained, exported, tmp_path):
    root, _, ckpt = trained
    frames = three_channel_frames(3, T_IN, seed=7)  # (N, T_in, C, H, W) dBZ: forecast after the last frame
    np.save(tmp_path / "ntchw.npy", frames)
    np.save(tmp_path / "nthwc.npy", np.ascontiguousarray(np.moveaxis(frames, 2, -1)))
    ok("predict.py", "--mindir_file", exported[0], "--ckpt_file", ckpt, "--input", tmp_path / "ntchw.npy",
       "--output_dir", tmp_path / "a")  # + parity with the checkpoint (exits non-zero above 1e-5)
    proc = ok("predict.py", "--onnx_file", exported[1], "--input", tmp_path / "nthwc.npy", "--data_layout", "NTHWC",
              "--output_dir", tmp_path / "b")
    assert "no targets" in proc.stdout and "data_layout NTHWC" in proc.stdout
    a = np.load(tmp_path / "a" / "predictions.npy")
    b = np.load(tmp_path / "b" / "predictions.npy")
    assert a.shape == (3, T_OUT, 3, 48, 80) and b.shape == (3, T_OUT, 48, 80, 3)
    np.testing.assert_allclose(np.moveaxis(b, -1, 2), a, atol=1e-3)  # same forecast, the user's axis order
    assert a.min() >= -10 - 1e-4 and a.max() <= 60 + 1e-4 and a.max() > 1.5  # dBZ, not [0, 1]
    windows = three_channel_frames(2, T_IN + T_OUT, seed=8)  # long enough to score
    np.save(tmp_path / "windows.npy", windows)
    proc = ok("predict.py", "--mindir_file", exported[0], "--input", tmp_path / "windows.npy", "--output_dir",
              tmp_path / "c")
    assert "scored against their targets" in proc.stdout and "MSE" in proc.stdout
    assert np.load(tmp_path / "c" / "predictions.npy").shape == (2, T_OUT, 3, 48, 80)


@pytest.mark.slow
def test_predict_refuses_other_frames_and_in_between_lengths_in_one_line(trained, exported, tmp_path):
    np.save(tmp_path / "one_channel.npy", three_channel_frames(2, T_IN)[:, :, :1])
    line = one_error_line(run("predict.py", "--mindir_file", exported[0], "--input", tmp_path / "one_channel.npy",
                              "--output_dir", tmp_path / "out"))
    assert "1x48x80" in line and "3x48x80" in line and "model.mindir" in line
    np.save(tmp_path / "short.npy", three_channel_frames(2, T_IN + 3))
    line = one_error_line(run("predict.py", "--mindir_file", exported[0], "--input", tmp_path / "short.npy",
                              "--output_dir", tmp_path / "out"))
    assert "9 frames" in line and f"exactly input_frames = {T_IN}" in line
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_ascend_310_files_of_own_sequences_reproduce_eval_scores(trained, exported, tmp_path):
    root, _, ckpt = trained
    ok("eval.py", "--ckpt_file", ckpt, "--thresholds", "[20,35]", "--output_dir", tmp_path / "eval")
    ok("preprocess.py", "--mindir_file", exported[0], "--output_dir", tmp_path / "pre")
    manifest = json.loads((tmp_path / "pre" / "preprocess.json").read_text())
    assert manifest["input_shape"] == [1, T_IN, 3, 48, 80] and manifest["label_dtype"] == "float32"
    ok("predict.py", "--mindir_file", exported[0], "--bin_dir", tmp_path / "pre" / "input", "--result_dir",
       tmp_path / "result")  # CPU stand-in for the 310 app
    ok("postprocess.py", "--result_path", tmp_path / "result", "--preprocess_path", tmp_path / "pre",
       "--output_dir", tmp_path / "post", "--thresholds", "[20,35]")
    device = json.loads((tmp_path / "post" / "metrics_310.json").read_text())
    host = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert device["num_sequences"] == host["num_sequences"] == 2
    for key in ("mse", "mae", "ssim"):
        assert device[key] == pytest.approx(host[key], rel=1e-5), key
    for got, want in zip(device["skill_scores"]["by_threshold"], host["skill_scores"]["by_threshold"]):
        assert abs(got["pooled"]["hits"] - want["pooled"]["hits"]) <= 2  # float rounding at a threshold


# ---------------------------------------------------------------- bad files: one line, nothing written

def _pickled(path):
    with open(path, "wb") as f:
        pickle.dump(np.zeros((10, 18, 1, 8, 8)), f)


def _npz_two_arrays(path):
    np.savez(path, a=np.zeros((10, 18, 1, 8, 8), np.float32), b=np.zeros((10, 18, 1, 8, 8), np.float32))


def _with_nan(path):
    frames = np.zeros((10, 18, 1, 8, 8), np.float32)
    frames[1, 3, 0, 2, 5] = np.nan
    np.save(path, frames)


BAD_FILES = {
    "rank": (lambda p: np.save(p, np.zeros((10, 18, 8, 8), np.float32)), "npy", "has 4 dimensions"),
    "channels": (lambda p: np.save(p, np.zeros((10, 18, 32, 8, 8), np.float32)), "npy", "more than 16"),
    "nan": (_with_nan, "npy", "NaN"),
    "npz_key": (_npz_two_arrays, "npz", "npz_key"),
    "pickle": (_pickled, "npy", "pickle"),
    "untileable": (lambda p: np.save(p, np.zeros((10, 18, 1, 10, 12), np.float32)), "npy", "multiples of 4"),
}


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(BAD_FILES))
def test_a_bad_training_file_is_one_error_line_and_nothing_is_written(kind, tmp_path):
    write, ext, expected = BAD_FILES[kind]
    path = tmp_path / f"bad.{ext}"
    write(str(path))
    out = tmp_path / "run"
    line = one_error_line(run("train.py", "--dataset", "sequences", "--data_path", path, "--data_layout", "NTCHW",
                              "--input_frames", T_IN, "--output_frames", T_OUT, *TINY, "--output_dir", out))
    assert expected in line and "bad." in line
    assert not out.exists()


# ---------------------------------------------------------------- Moving MNIST's own file as sequences

@pytest.mark.slow
def test_mnist_test_file_as_tnhw_sequences_scores_like_the_dedicated_reader(tmp_path):
    sequences = (np.random.default_rng(4).random((4, 20, 32, 32)) > 0.7).astype(np.uint8) * 255  # (N, T, H, W)
    path = write_test_file(str(tmp_path / "mnist_test_seq.npy"), sequences)  # (T, N, H, W)
    common = [*TINY, "--input_frames", "10", "--output_frames", "10"]
    ok("train.py", "--dataset", "sequences", "--data_path", path, "--data_layout", "TNHW", "--val_fraction", "0.25",
       "--test_fraction", "0.25", *common, "--output_dir", tmp_path / "run")
    ckpt = tmp_path / "run" / "ckpt" / "last.ckpt"
    ok("eval.py", "--ckpt_file", ckpt, "--eval_split", "all", "--output_dir", tmp_path / "as_sequences")
    ok("eval.py", "--ckpt_file", ckpt, "--dataset", "mnist", "--image_size", "32", "--data_path", path,
       "--output_dir", tmp_path / "as_mnist")
    as_sequences = json.loads((tmp_path / "as_sequences" / "metrics.json").read_text())
    as_mnist = json.loads((tmp_path / "as_mnist" / "metrics.json").read_text())
    assert as_sequences["num_sequences"] == as_mnist["num_sequences"] == 4
    for key in ("mse", "mae", "ssim", "ssim_openstl", "psnr", "per_frame"):
        assert as_sequences[key] == as_mnist[key], key
    extrapolation = as_sequences["baselines"].pop("extrapolation")  # scored next to own-sequence models only
    assert as_sequences["baselines"] == as_mnist["baselines"] and extrapolation["mse"] > 0


@pytest.mark.slow
def test_thresholds_on_moving_mnist_are_pixel_values_in_0_1(tmp_path):
    ok("eval.py", "--baseline", "copy_last", "--dataset", "synthetic", "--num_sequences", "4", "--thresholds", "0.5",
       "--fss_scales", "[9,2]", "--output_dir", tmp_path / "ok")
    skill = json.loads((tmp_path / "ok" / "metrics.json").read_text())["skill_scores"]
    assert skill["units"] == "pixel values in [0, 1]" and skill["by_threshold"][0]["pooled"]["csi"] > 0
    fss = skill["fss"]["by_threshold"][0]["by_scale"]  # digits moved a few pixels: more skill at 9 than at 2
    assert skill["fss"]["scales"] == [2, 9] and 0 < fss[0]["pooled"]["fss"] < fss[1]["pooled"]["fss"] < 1
    line = one_error_line(run("eval.py", "--baseline", "copy_last", "--dataset", "synthetic", "--thresholds", "20",
                              "--output_dir", tmp_path / "refused"))
    assert "20" in line and "(0, 1]" in line
    assert not (tmp_path / "refused").exists()
